#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::amf0(data));
