//! Code that runs inside probe pods (`kfconform probe <role>`).
