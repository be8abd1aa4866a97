//! Attacks of class `sandbox` (see main.rs).
