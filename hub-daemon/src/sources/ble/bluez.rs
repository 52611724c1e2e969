//! The radio on BlueZ: [`BleCentral`] over btleplug (which talks to `bluetoothd` over the D-Bus system bus; the
//! `DBUS_SYSTEM_BUS_ADDRESS` variable points it elsewhere, which is how the tests use a simulated BlueZ).
//!
//! btleplug has no adapter power switch; the power cycle goes through bluez-async (btleplug's own BlueZ layer)
//! setting `org.bluez.Adapter1.Powered`.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use btleplug::api::{
    Central as _, CentralEvent, Characteristic, Manager as _, Peripheral as _, ScanFilter,
    WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral};
use futures_util::StreamExt;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::radio::{
    Advert, BleCentral, BlePeripheral, CharInfo, EventStream, Notification, NotificationStream,
    RadioError, RadioEvent,
};

/// How long BlueZ may take to connect and resolve services.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The first adapter BlueZ reports.
#[derive(Clone)]
pub struct BluezCentral {
    adapter: Adapter,
    /// Only these addresses have their adverts read (None: all). BlueZ reports every advert of every device nearby;
    /// reading each one's properties would be two D-Bus calls per advert.
    interest: Option<Arc<HashSet<String>>>,
}

impl BluezCentral {
    pub async fn first_adapter() -> Result<BluezCentral, RadioError> {
        let manager = Manager::new().await.map_err(map_err)?;
        let adapter = manager
            .adapters()
            .await
            .map_err(map_err)?
            .into_iter()
            .next()
            .ok_or(RadioError::NoAdapter)?;
        Ok(BluezCentral {
            adapter,
            interest: None,
        })
    }

    /// Reads adverts only of these addresses; others are reported as [`RadioEvent::Heard`].
    pub fn only(mut self, addresses: impl IntoIterator<Item = String>) -> BluezCentral {
        self.interest = Some(Arc::new(
            addresses
                .into_iter()
                .map(|a| a.to_ascii_uppercase())
                .collect(),
        ));
        self
    }

    async fn address_of(&self, id: &btleplug::platform::PeripheralId) -> Option<String> {
        if let Some(a) = address_from_id(id) {
            return Some(a);
        }
        let p = self.adapter.peripheral(id).await.ok()?;
        Some(p.address().to_string().to_uppercase())
    }

    async fn find(&self, address: &str) -> Result<Option<Peripheral>, RadioError> {
        let all = self.adapter.peripherals().await.map_err(map_err)?;
        Ok(all
            .into_iter()
            .find(|p| p.address().to_string().eq_ignore_ascii_case(address)))
    }
}

/// The address in a BlueZ device id (`hci0/dev_AA_BB_CC_DD_EE_FF`), without asking BlueZ.
fn address_from_id(id: &btleplug::platform::PeripheralId) -> Option<String> {
    let s = id.to_string();
    let dev = s.rsplit_once("dev_")?.1;
    super::config::parse_address(&dev.replace('_', ":"))
}

/// Maps btleplug's error, singling out BlueZ's `InProgress` (the symptom of a wedged adapter).
fn map_err(e: btleplug::Error) -> RadioError {
    match e {
        btleplug::Error::NotConnected => RadioError::NotConnected,
        btleplug::Error::DeviceNotFound => RadioError::NotFound("device".into()),
        btleplug::Error::NoSuchCharacteristic => RadioError::NotFound("characteristic".into()),
        btleplug::Error::NoAdapterAvailable => RadioError::NoAdapter,
        btleplug::Error::TimedOut(_) => RadioError::Timeout,
        btleplug::Error::Other(inner) => from_bluez(inner.as_ref()),
        other => RadioError::Other(other.to_string()),
    }
}

fn from_bluez(e: &(dyn std::error::Error + Send + Sync + 'static)) -> RadioError {
    if let Some(bluez_async::BluetoothError::DbusError(d)) =
        e.downcast_ref::<bluez_async::BluetoothError>()
    {
        if d.name() == Some("org.bluez.Error.InProgress") {
            return RadioError::InProgress;
        }
        if d.name() == Some("org.bluez.Error.NotConnected") {
            return RadioError::NotConnected;
        }
    }
    if let Some(bluez_async::BluetoothError::ServiceDiscoveryTimedOut) =
        e.downcast_ref::<bluez_async::BluetoothError>()
    {
        return RadioError::Timeout;
    }
    RadioError::Other(e.to_string())
}

fn advert_of(p: &btleplug::api::PeripheralProperties) -> Advert {
    Advert {
        address: p.address.to_string().to_uppercase(),
        name: p.local_name.clone(),
        rssi: p.rssi,
        services: p.services.clone(),
        service_data: p.service_data.clone(),
        manufacturer_data: p.manufacturer_data.clone(),
    }
}

#[async_trait::async_trait]
impl BleCentral for BluezCentral {
    type Peripheral = BluezPeripheral;

    async fn events(&self) -> Result<EventStream, RadioError> {
        let events = self.adapter.events().await.map_err(map_err)?;
        let me = self.clone();
        let s = events.filter_map(move |ev| {
            let me = me.clone();
            async move {
                use CentralEvent::*;
                match ev {
                    DeviceDiscovered(id)
                    | DeviceUpdated(id)
                    | ManufacturerDataAdvertisement { id, .. }
                    | ServiceDataAdvertisement { id, .. }
                    | ServicesAdvertisement { id, .. }
                    | RssiUpdate { id, .. } => {
                        if let (Some(only), Some(a)) = (&me.interest, address_from_id(&id))
                            && !only.contains(&a)
                        {
                            return Some(RadioEvent::Heard(a));
                        }
                        // Read the whole state: the first ServiceData of a new device comes with no event of its own.
                        let p = me.adapter.peripheral(&id).await.ok()?;
                        let props = p.properties().await.ok().flatten()?;
                        Some(RadioEvent::Seen(advert_of(&props)))
                    }
                    DeviceConnected(id) => me.address_of(&id).await.map(RadioEvent::Connected),
                    DeviceDisconnected(id) => {
                        me.address_of(&id).await.map(RadioEvent::Disconnected)
                    }
                    _ => None,
                }
            }
        });
        Ok(Box::pin(s))
    }

    async fn start_scan(&self, services: &[Uuid]) -> Result<(), RadioError> {
        self.adapter
            .start_scan(ScanFilter {
                services: services.to_vec(),
            })
            .await
            .map_err(map_err)
    }

    async fn stop_scan(&self) -> Result<(), RadioError> {
        self.adapter.stop_scan().await.map_err(map_err)
    }

    async fn peripheral(&self, address: &str) -> Result<Option<BluezPeripheral>, RadioError> {
        Ok(self.find(address).await?.map(|p| BluezPeripheral {
            address: p.address().to_string().to_uppercase(),
            p,
            chars: Arc::new(Mutex::new(BTreeSet::new())),
        }))
    }

    async fn advert(&self, address: &str) -> Result<Option<Advert>, RadioError> {
        let Some(p) = self.find(address).await? else {
            return Ok(None);
        };
        Ok(p.properties()
            .await
            .map_err(map_err)?
            .map(|props| advert_of(&props)))
    }

    async fn power_cycle(&self) -> Result<(), RadioError> {
        let (conn, session) = bluez_async::BluetoothSession::new()
            .await
            .map_err(|e| from_bluez(&e))?;
        let conn = tokio::spawn(conn);
        let result = async {
            let adapters = session.get_adapters().await.map_err(|e| from_bluez(&e))?;
            let adapter = adapters.first().ok_or(RadioError::NoAdapter)?;
            session
                .set_powered(&adapter.id, false)
                .await
                .map_err(|e| from_bluez(&e))?;
            session
                .set_powered(&adapter.id, true)
                .await
                .map_err(|e| from_bluez(&e))
        }
        .await;
        conn.abort();
        result
    }
}

/// A BlueZ device, with the characteristics found by the last discovery.
pub struct BluezPeripheral {
    address: String,
    p: Peripheral,
    chars: Arc<Mutex<BTreeSet<Characteristic>>>,
}

impl BluezPeripheral {
    async fn char(&self, uuid: Uuid) -> Result<Characteristic, RadioError> {
        self.chars
            .lock()
            .await
            .iter()
            .find(|c| c.uuid == uuid)
            .cloned()
            .ok_or_else(|| RadioError::NotFound(format!("characteristic {uuid}")))
    }
}

#[async_trait::async_trait]
impl BlePeripheral for BluezPeripheral {
    fn address(&self) -> String {
        self.address.clone()
    }

    async fn connect(&self) -> Result<(), RadioError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.p.connect()).await {
            Ok(r) => r.map_err(map_err),
            Err(_) => Err(RadioError::Timeout),
        }
    }

    async fn disconnect(&self) -> Result<(), RadioError> {
        self.p.disconnect().await.map_err(map_err)
    }

    async fn discover(&self) -> Result<Vec<CharInfo>, RadioError> {
        self.p.discover_services().await.map_err(map_err)?;
        let chars = self.p.characteristics();
        let out = chars
            .iter()
            .map(|c| {
                use btleplug::api::CharPropFlags as F;
                CharInfo {
                    service: c.service_uuid,
                    uuid: c.uuid,
                    read: c.properties.contains(F::READ),
                    write: c
                        .properties
                        .intersects(F::WRITE | F::WRITE_WITHOUT_RESPONSE),
                    notify: c.properties.contains(F::NOTIFY),
                    indicate: c.properties.contains(F::INDICATE),
                }
            })
            .collect();
        *self.chars.lock().await = chars;
        Ok(out)
    }

    async fn read(&self, uuid: Uuid) -> Result<Vec<u8>, RadioError> {
        let c = self.char(uuid).await?;
        self.p.read(&c).await.map_err(map_err)
    }

    async fn write(&self, uuid: Uuid, value: &[u8]) -> Result<(), RadioError> {
        let c = self.char(uuid).await?;
        self.p
            .write(&c, value, WriteType::WithResponse)
            .await
            .map_err(map_err)
    }

    async fn subscribe(&self, uuid: Uuid) -> Result<(), RadioError> {
        let c = self.char(uuid).await?;
        self.p.subscribe(&c).await.map_err(map_err)
    }

    async fn notifications(&self) -> Result<NotificationStream, RadioError> {
        let s = self.p.notifications().await.map_err(map_err)?;
        Ok(Box::pin(s.map(|n| Notification {
            uuid: n.uuid,
            value: n.value,
        })))
    }
}
