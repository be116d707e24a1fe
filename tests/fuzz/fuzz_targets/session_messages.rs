#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::session_messages(data));
