#![no_main]

use credwatch_fuzz::{session, SessionTarget};

libfuzzer_sys::fuzz_target!(|data: &[u8]| session(SessionTarget::ManageSieve, data));
