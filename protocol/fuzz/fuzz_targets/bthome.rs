//! BTHome v2: `bthome::decode` with and without a key, and the encrypted path with authentic (re-sealed) payloads.
//!
//! 1. The input as received: without a key, with a key (must then be encrypted, counter above `last_counter`).
//! 2. The input as plaintext (info byte + objects) sealed here with AES-128-CCM exactly as bthome.io/encryption
//!    says, so the decrypted-object parser sees fuzzed bytes; the encrypted and plaintext paths must agree.
//! 3. Whatever decodes and can be encoded decodes back to the same advert.
#![no_main]

use aes::Aes128;
use ccm::aead::AeadInOut;
use ccm::consts::{U4, U13};
use ccm::{Ccm, KeyInit};
use hearth_protocol::bthome::{self, BthomeError, MAX_OBJECTS, MAX_SERVICE_DATA};
use libfuzzer_sys::fuzz_target;

/// The example bind key and MAC address of bthome.io/encryption.
const KEY: [u8; 16] = [
    0x23, 0x1d, 0x39, 0xc1, 0xd7, 0xcc, 0x1a, 0xb1, 0xae, 0xe2, 0x24, 0xcd, 0x09, 0x6d, 0xb9, 0x32,
];
const MAC: [u8; 6] = [0x54, 0x48, 0xE6, 0x8F, 0x80, 0xA5];
const COUNTER: u32 = 0x0000_0007;

/// info | AES-CCM(objects) | counter LE | MIC, with nonce = MAC | UUID D2 FC | info | counter (bthome.io/encryption).
fn seal(info: u8, objects: &[u8]) -> Option<Vec<u8>> {
    let counter = COUNTER.to_le_bytes();
    let mut nonce = [0u8; 13];
    nonce[..6].copy_from_slice(&MAC);
    nonce[6..8].copy_from_slice(&bthome::SERVICE_UUID.to_le_bytes());
    nonce[8] = info;
    nonce[9..].copy_from_slice(&counter);
    let mut buf = objects.to_vec();
    let tag = Ccm::<Aes128, U4, U13>::new(&KEY.into())
        .encrypt_inout_detached(&nonce.into(), &[], buf.as_mut_slice().into())
        .ok()?;
    let mut out = vec![info];
    out.extend_from_slice(&buf);
    out.extend_from_slice(&counter);
    out.extend_from_slice(&tag);
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    // 1. As received.
    let plain = bthome::decode(data, MAC, None, None);
    if let Ok(a) = &plain {
        assert!(!a.encrypted && a.counter.is_none() && a.objects.len() <= MAX_OBJECTS);
        let _ = a.observations();
        let mut out = [0u8; MAX_SERVICE_DATA];
        if let Ok(n) = bthome::encode(a, MAC, None, &mut out) {
            assert_eq!(bthome::decode(&out[..n], MAC, None, None).as_ref(), Ok(a));
        }
    }
    if let Ok(a) = bthome::decode(data, MAC, Some(&KEY), None) {
        assert!(a.encrypted, "a keyed device was accepted in plaintext");
        let c = a.counter.expect("encrypted adverts carry a counter");
        assert_eq!(
            bthome::decode(data, MAC, Some(&KEY), Some(c)),
            Err(BthomeError::ReplayedCounter {
                counter: c,
                last: c
            })
        );
    }

    // 2. Sealed here: the encrypted path must agree with the plaintext path on the same objects.
    let Some((&info, objects)) = data.split_first() else {
        return;
    };
    let Some(sealed) = seal(info | 0x01, objects) else {
        return;
    };
    let encrypted = bthome::decode(&sealed, MAC, Some(&KEY), Some(COUNTER - 1));
    let mut as_plain = data.to_vec();
    as_plain[0] = info & !0x01;
    let plain = bthome::decode(&as_plain, MAC, None, None);
    if sealed.len() <= MAX_SERVICE_DATA {
        match (&encrypted, &plain) {
            (Ok(e), Ok(p)) => {
                assert!(e.encrypted && e.counter == Some(COUNTER));
                assert_eq!(
                    (e.trigger_based, e.packet_id, &e.objects),
                    (p.trigger_based, p.packet_id, &p.objects)
                );
                let mut out = [0u8; MAX_SERVICE_DATA];
                if let Ok(n) = bthome::encode(e, MAC, Some(&KEY), &mut out) {
                    assert_eq!(
                        bthome::decode(&out[..n], MAC, Some(&KEY), Some(COUNTER - 1)).as_ref(),
                        Ok(e)
                    );
                }
            }
            (Err(_), Err(_)) => {}
            (e, p) => panic!("encrypted and plaintext paths disagree: {e:?} vs {p:?}"),
        }
    }
});
