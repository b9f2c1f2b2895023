//! Redis replies: any bytes a server (or whatever answers on its port) sends are one reply
//! or an error, never a panic, a stack overflow or an allocation sized by a length it claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pointsman::backend::redis::resp::parse_reply;

fuzz_target!(|data: &[u8]| {
    let _ = parse_reply(data);
});
