#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| credwatch_fuzz::decode_frames(data));
