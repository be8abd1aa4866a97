//! Attacks of class `index_names` (see main.rs).
