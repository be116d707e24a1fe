#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::http_request(data));
