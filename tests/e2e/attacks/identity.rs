//! Attacks of class `identity` (see main.rs).
