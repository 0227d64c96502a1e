#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| athena_rs::fuzzing::rest_query(data));
