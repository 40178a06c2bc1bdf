//! The run: plan, bounded parallelism, per-test timeouts, cleanup guard, progress events.
