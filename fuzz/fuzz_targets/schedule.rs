#![no_main]
//! libFuzzer entry for `warden_host::fuzzing::check_schedule` (the property lives there, so the lib tests replay it on stable).
libfuzzer_sys::fuzz_target!(|data: &[u8]| warden_host::fuzzing::check_schedule(data));
