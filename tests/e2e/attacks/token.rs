//! Attacks of class `token` (see main.rs).
