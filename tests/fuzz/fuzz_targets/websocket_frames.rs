#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::websocket_frames(data));
