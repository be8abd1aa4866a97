//! Attacks of class `availability` (see main.rs).
