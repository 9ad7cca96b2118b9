//! The input jitter buffer and Opus decoder under arbitrary packet streams (sequence numbers,
//! timestamps, payloads from the network): never a panic, never a frame out of order.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_channels::webrtc::codec::OpusIn;
use switchboard_channels::webrtc::jitter::{Frame, JitterBuffer};

fuzz_target!(|data: &[u8]| {
    let mut jitter = JitterBuffer::default();
    let Ok(mut decoder) = OpusIn::new() else { return };
    for packet in data.chunks(12) {
        if packet.len() < 6 {
            break;
        }
        let seq = u16::from_be_bytes([packet[0], packet[1]]);
        let ts = u32::from_be_bytes([packet[2], packet[3], packet[4], packet[5]]);
        jitter.push(seq, ts, packet[6..].to_vec());
        while let Some(frame) = jitter.pop() {
            let samples = decoder.decode(&frame);
            if matches!(frame, Frame::Lost { .. }) {
                assert!(!samples.is_empty());
            }
        }
    }
});
