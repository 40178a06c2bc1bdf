//! Helpers shared by this binary's topic modules.
#![allow(dead_code)]
