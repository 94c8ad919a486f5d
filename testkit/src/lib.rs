//! Test harness shared by the workspace's end-to-end tests.
