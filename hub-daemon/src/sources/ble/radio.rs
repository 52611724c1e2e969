//! The small radio interface the Bluetooth source is written against, so its logic is tested without D-Bus (a
//! scripted radio in the unit tests) and runs on BlueZ through btleplug ([`super::bluez`]) in the daemon.
//!
//! Only what the source needs: scan with service filters, the events that say a device was seen or dropped, connect,
//! discover, read, write, subscribe, one notification stream per connection, and an adapter power cycle (the cure for
//! a wedged controller). Addresses are `AA:BB:CC:DD:EE:FF`, upper case; characteristics are named by UUID (health
//! devices have one characteristic of each kind).

use std::collections::HashMap;
use std::pin::Pin;

use futures_util::Stream;
use uuid::Uuid;

/// The Bluetooth base UUID with a 16-bit SIG number.
pub const fn sig(short: u16) -> Uuid {
    Uuid::from_u128(0x0000_0000_0000_1000_8000_0080_5f9b_34fb | ((short as u128) << 96))
}

/// The 16-bit SIG number of a base UUID, if it is one.
pub fn short(u: &Uuid) -> Option<u16> {
    let v = u.as_u128();
    (v & !(0xffff_u128 << 96) == sig(0).as_u128()).then_some((v >> 96) as u16)
}

/// What an advertisement (or a cached device) tells us.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Advert {
    pub address: String,
    pub name: Option<String>,
    pub rssi: Option<i16>,
    pub services: Vec<Uuid>,
    pub service_data: HashMap<Uuid, Vec<u8>>,
    pub manufacturer_data: HashMap<u16, Vec<u8>>,
}

/// What the central reports.
#[derive(Debug, Clone, PartialEq)]
pub enum RadioEvent {
    /// A device was seen (discovered, an advert, an RSSI update); carries what is known of it now.
    Seen(Advert),
    /// A device the central was told not to care about was heard (a sign the radio works; nothing read).
    Heard(String),
    Connected(String),
    Disconnected(String),
}

/// A characteristic found on a connected device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CharInfo {
    pub service: Uuid,
    pub uuid: Uuid,
    pub read: bool,
    pub write: bool,
    pub notify: bool,
    pub indicate: bool,
}

/// A value notified or indicated by a connected device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub uuid: Uuid,
    pub value: Vec<u8>,
}

/// Why a radio operation failed. `InProgress` is singled out: BlueZ answers it when the controller or its discovery
/// is stuck, and the watchdog counts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RadioError {
    #[error("operation already in progress (org.bluez.Error.InProgress)")]
    InProgress,
    #[error("device not connected")]
    NotConnected,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("timed out")]
    Timeout,
    #[error("no Bluetooth adapter")]
    NoAdapter,
    #[error("{0}")]
    Other(String),
}

pub type EventStream = Pin<Box<dyn Stream<Item = RadioEvent> + Send>>;
pub type NotificationStream = Pin<Box<dyn Stream<Item = Notification> + Send>>;

/// A Bluetooth LE central (one adapter).
#[async_trait::async_trait]
pub trait BleCentral: Send + Sync + 'static {
    type Peripheral: BlePeripheral;

    /// Events from now on (a fresh stream each call; devices already known are reported as `Seen` first).
    async fn events(&self) -> Result<EventStream, RadioError>;
    /// Starts discovery; an empty filter means every device.
    async fn start_scan(&self, services: &[Uuid]) -> Result<(), RadioError>;
    async fn stop_scan(&self) -> Result<(), RadioError>;
    /// The device with this address, if the adapter knows it.
    async fn peripheral(&self, address: &str) -> Result<Option<Self::Peripheral>, RadioError>;
    /// Everything currently known about a device (adverts arriving before its first event are read here).
    async fn advert(&self, address: &str) -> Result<Option<Advert>, RadioError>;
    /// Powers the adapter off and on again.
    async fn power_cycle(&self) -> Result<(), RadioError>;
}

/// A device the central can connect to.
#[async_trait::async_trait]
pub trait BlePeripheral: Send + Sync + 'static {
    fn address(&self) -> String;
    /// Returns once connected and services are resolved.
    async fn connect(&self) -> Result<(), RadioError>;
    async fn disconnect(&self) -> Result<(), RadioError>;
    /// Discovers the GATT database; returns its characteristics.
    async fn discover(&self) -> Result<Vec<CharInfo>, RadioError>;
    async fn read(&self, uuid: Uuid) -> Result<Vec<u8>, RadioError>;
    async fn write(&self, uuid: Uuid, value: &[u8]) -> Result<(), RadioError>;
    /// Enables notifications or indications (whichever the characteristic has).
    async fn subscribe(&self, uuid: Uuid) -> Result<(), RadioError>;
    /// Values notified from now on, for every subscribed characteristic.
    async fn notifications(&self) -> Result<NotificationStream, RadioError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_uuids_round_trip() {
        let u = sig(0x2A37);
        assert_eq!(u.to_string(), "00002a37-0000-1000-8000-00805f9b34fb");
        assert_eq!(short(&u), Some(0x2A37));
        assert_eq!(short(&Uuid::from_u128(1)), None);
    }
}
