//! Passive BTHome v2 sensors (motion, door, button, battery): decoded from adverts, never connected.
//!
//! A device with a bind key must advertise encrypted (plaintext is a downgrade) and its counter must increase (an
//! older one is a replay); both are quarantined and counted. BlueZ repeats an unchanged advert many times: the same
//! counter (or, unencrypted, the same packet id) again is counted as a repeat and dropped — it carries nothing new.
//! The encryption counter is the reading's sequence number, so the gate and the store also see a replay across a
//! restart of the hub.

use std::collections::HashMap;

use hearth_protocol::bthome::{self, BthomeError};

use crate::clock::Clock;
use crate::model::{ParsedObs, Reason};

use super::config::{BleDevice, address_bytes};
use super::device_time::ReadingTime;
use super::health;
use super::radio::sig;
use super::sink::{CoreGone, Sink};

/// What was last accepted from each device.
#[derive(Default)]
pub struct BthomeState {
    last_counter: HashMap<String, u32>,
    last_packet: HashMap<String, (u8, Vec<u8>)>,
    /// The service data last processed per device: BlueZ reports it again with every RSSI update.
    last_data: HashMap<String, Vec<u8>>,
}

impl BthomeState {
    /// Decodes `service_data` (after the UUID) from `dev` and sends its activity to the core.
    pub async fn advert<C: Clock>(
        &mut self,
        dev: &BleDevice,
        service_data: &[u8],
        sink: &Sink<C>,
    ) -> Result<(), CoreGone> {
        let Some(mac) = address_bytes(&dev.address) else {
            return Ok(());
        };
        if self
            .last_data
            .get(&dev.id)
            .is_some_and(|d| d == service_data)
        {
            metrics::counter!(health::BTHOME_REPEATED).increment(1);
            return Ok(());
        }
        self.last_data.insert(dev.id.clone(), service_data.to_vec());
        let key = dev.key();
        let last = self
            .last_counter
            .get(&dev.id)
            .copied()
            .or_else(|| sink.committed(&dev.id).filter(|_| key.is_some()));
        let advert = match bthome::decode(service_data, mac, key.as_ref(), last) {
            Ok(a) => a,
            Err(BthomeError::ReplayedCounter { counter, .. }) if Some(counter) == last => {
                metrics::counter!(health::BTHOME_REPEATED).increment(1);
                return Ok(());
            }
            Err(e) => {
                let (reason, label) = match e {
                    BthomeError::ReplayedCounter { .. } => (Reason::ReplayedSequence, "replay"),
                    BthomeError::PlaintextFromKeyedDevice => (Reason::BadMac, "downgrade"),
                    BthomeError::BadMic => (Reason::BadMac, "authentication"),
                    BthomeError::MissingKey => (Reason::WrongKey, "missing_key"),
                    _ => (Reason::Malformed, "malformed"),
                };
                metrics::counter!(health::BTHOME_REJECTED, "reason" => label).increment(1);
                tracing::warn!(device = %dev.id, error = %e, "BTHome advert rejected");
                return sink
                    .reject(Some(&dev.id), reason, format!("BTHome: {e}"), service_data)
                    .await;
            }
        };
        let seq = match advert.counter {
            Some(c) => {
                self.last_counter.insert(dev.id.clone(), c);
                c
            }
            None => {
                if let Some(pid) = advert.packet_id {
                    let same = self
                        .last_packet
                        .get(&dev.id)
                        .is_some_and(|(p, data)| *p == pid && data == service_data);
                    if same {
                        metrics::counter!(health::BTHOME_REPEATED).increment(1);
                        return Ok(());
                    }
                    self.last_packet
                        .insert(dev.id.clone(), (pid, service_data.to_vec()));
                }
                sink.next_seq(&dev.id)
            }
        };
        let obs: Vec<ParsedObs> = advert
            .observations()
            .into_iter()
            .map(ParsedObs::Ok)
            .collect();
        if obs.is_empty() {
            return Ok(());
        }
        // Activity events happen when they are advertised: the hub's time.
        // Nothing waits for this commit (an advert cannot be asked for again).
        drop(
            sink.reading(&dev.id, seq, ReadingTime::None, obs, service_data)
                .await?,
        );
        Ok(())
    }
}

/// The BTHome service data in an advert, if any.
pub fn service_data(adv: &super::radio::Advert) -> Option<&[u8]> {
    adv.service_data
        .get(&sig(bthome::SERVICE_UUID))
        .map(Vec::as_slice)
}
