//! The D-Bus objects of the simulated BlueZ (org.bluez.Adapter1, Device1, GattService1, GattCharacteristic1).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use zbus::interface;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

use super::{ADAPTER_PATH, DevShared, World, uuid16};

/// BlueZ's error names (`org.bluez.Error.*`).
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.bluez.Error")]
pub enum BluezError {
    #[zbus(error)]
    ZBus(zbus::Error),
    InProgress(String),
    Failed(String),
    NotConnected(String),
    NotPermitted(String),
    NotReady(String),
}

fn named(name: &str, msg: &str) -> BluezError {
    let m = msg.to_string();
    match name {
        "InProgress" => BluezError::InProgress(m),
        "NotConnected" => BluezError::NotConnected(m),
        "NotPermitted" => BluezError::NotPermitted(m),
        "NotReady" => BluezError::NotReady(m),
        _ => BluezError::Failed(m),
    }
}

pub(crate) fn service_data_value(d: &BTreeMap<u16, Vec<u8>>) -> Value<'static> {
    let map: HashMap<String, Value<'static>> = d
        .iter()
        .map(|(k, v)| (uuid16(*k), Value::from(v.clone())))
        .collect();
    Value::from(map)
}

fn owned(v: Value<'_>) -> OwnedValue {
    v.try_to_owned().expect("owned value")
}

pub struct Adapter1 {
    pub(crate) world: Arc<World>,
}

#[interface(name = "org.bluez.Adapter1")]
impl Adapter1 {
    async fn start_discovery(&self) -> Result<(), BluezError> {
        let started = {
            let mut a = self.world.adapter.lock().unwrap();
            if a.wedged {
                a.discovery_errors += 1;
                return Err(BluezError::InProgress(
                    "Operation already in progress".into(),
                ));
            }
            if !a.powered {
                return Err(BluezError::NotReady("Resource Not Ready".into()));
            }
            !std::mem::replace(&mut a.discovering, true)
        };
        if started {
            self.world
                .emit(
                    ADAPTER_PATH,
                    "org.bluez.Adapter1",
                    "Discovering",
                    Value::from(true),
                )
                .await;
        }
        Ok(())
    }

    async fn stop_discovery(&self) -> Result<(), BluezError> {
        let was = {
            let mut a = self.world.adapter.lock().unwrap();
            if a.wedged {
                return Ok(());
            }
            std::mem::replace(&mut a.discovering, false)
        };
        if was {
            self.world
                .emit(
                    ADAPTER_PATH,
                    "org.bluez.Adapter1",
                    "Discovering",
                    Value::from(false),
                )
                .await;
        }
        Ok(())
    }

    async fn set_discovery_filter(
        &self,
        _filter: HashMap<String, OwnedValue>,
    ) -> Result<(), BluezError> {
        Ok(())
    }

    async fn get_discovery_filters(&self) -> Vec<String> {
        vec![
            "UUIDs".into(),
            "RSSI".into(),
            "Transport".into(),
            "DuplicateData".into(),
        ]
    }

    async fn remove_device(&self, _device: OwnedObjectPath) -> Result<(), BluezError> {
        Ok(())
    }

    #[zbus(property)]
    fn address(&self) -> String {
        "00:1A:7D:DA:71:13".into()
    }
    #[zbus(property)]
    fn address_type(&self) -> String {
        "public".into()
    }
    #[zbus(property)]
    fn name(&self) -> String {
        "hearth-sim".into()
    }
    #[zbus(property)]
    fn alias(&self) -> String {
        "hearth-sim".into()
    }
    #[zbus(property)]
    fn modalias(&self) -> String {
        "usb:v1D6Bp0246d0542".into()
    }
    #[zbus(property)]
    fn discovering(&self) -> bool {
        self.world.adapter.lock().unwrap().discovering
    }
    #[zbus(property)]
    fn powered(&self) -> bool {
        self.world.adapter.lock().unwrap().powered
    }
    /// Powering off drops every connection, stops discovery and clears a wedge (a controller reset).
    #[zbus(property)]
    async fn set_powered(&mut self, on: bool) {
        let was = {
            let mut a = self.world.adapter.lock().unwrap();
            let was = a.powered;
            a.powered = on;
            if !on {
                a.wedged = false;
                a.discovering = false;
                a.power_cycles += 1;
            }
            was
        };
        if !on {
            self.world.drop_all().await;
            self.world
                .emit(
                    ADAPTER_PATH,
                    "org.bluez.Adapter1",
                    "Discovering",
                    Value::from(false),
                )
                .await;
        }
        if was != on {
            self.world
                .emit(
                    ADAPTER_PATH,
                    "org.bluez.Adapter1",
                    "Powered",
                    Value::from(on),
                )
                .await;
        }
    }
}

pub struct Device1 {
    pub(crate) world: Arc<World>,
    pub(crate) dev: Arc<DevShared>,
}

#[interface(name = "org.bluez.Device1")]
impl Device1 {
    async fn connect(&self) -> Result<(), BluezError> {
        if self.world.adapter.lock().unwrap().wedged {
            return Err(BluezError::InProgress(
                "Operation already in progress".into(),
            ));
        }
        let (fail, advertising) = {
            let mut s = self.dev.state.lock().unwrap();
            (s.fail_connect.pop_front(), s.advertising)
        };
        if let Some(name) = fail {
            return Err(named(name, "scripted failure"));
        }
        if !advertising {
            // Out of range: the controller pages for a while, then gives up.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(BluezError::Failed("le-connection-abort-by-local".into()));
        }
        {
            let mut s = self.dev.state.lock().unwrap();
            if s.connected {
                return Ok(());
            }
            s.connected = true;
            s.connects += 1;
        }
        let path = self.dev.path.clone();
        self.world
            .emit(&path, "org.bluez.Device1", "Connected", Value::from(true))
            .await;
        self.dev.state.lock().unwrap().resolved = true;
        self.world
            .emit(
                &path,
                "org.bluez.Device1",
                "ServicesResolved",
                Value::from(true),
            )
            .await;
        self.dev.changed.send_modify(|g| *g += 1);
        Ok(())
    }

    async fn disconnect(&self) -> Result<(), BluezError> {
        self.world.drop_connection(&self.dev).await;
        Ok(())
    }

    #[zbus(property)]
    fn address(&self) -> String {
        self.dev.state.lock().unwrap().address.clone()
    }
    #[zbus(property)]
    fn address_type(&self) -> String {
        "public".into()
    }
    #[zbus(property)]
    fn name(&self) -> zbus::fdo::Result<String> {
        self.dev
            .state
            .lock()
            .unwrap()
            .name
            .clone()
            .ok_or_else(|| zbus::fdo::Error::InvalidArgs("No such property 'Name'".into()))
    }
    #[zbus(property)]
    fn alias(&self) -> String {
        let s = self.dev.state.lock().unwrap();
        s.name
            .clone()
            .unwrap_or_else(|| s.address.replace(':', "-"))
    }
    #[zbus(property)]
    fn adapter(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(ADAPTER_PATH).expect("path")
    }
    #[zbus(property)]
    fn paired(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn trusted(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn blocked(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn legacy_pairing(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn connected(&self) -> bool {
        self.dev.state.lock().unwrap().connected
    }
    #[zbus(property)]
    fn services_resolved(&self) -> bool {
        self.dev.state.lock().unwrap().resolved
    }
    #[zbus(property, name = "RSSI")]
    fn rssi(&self) -> i16 {
        self.dev.state.lock().unwrap().rssi
    }
    #[zbus(property, name = "UUIDs")]
    fn uuids(&self) -> Vec<String> {
        self.dev
            .state
            .lock()
            .unwrap()
            .advertised
            .iter()
            .map(|u| uuid16(*u))
            .collect()
    }
    #[zbus(property)]
    fn service_data(&self) -> HashMap<String, OwnedValue> {
        self.dev
            .state
            .lock()
            .unwrap()
            .service_data
            .iter()
            .map(|(k, v)| (uuid16(*k), owned(Value::from(v.clone()))))
            .collect()
    }
    #[zbus(property)]
    fn manufacturer_data(&self) -> HashMap<u16, OwnedValue> {
        self.dev
            .state
            .lock()
            .unwrap()
            .manufacturer_data
            .iter()
            .map(|(k, v)| (*k, owned(Value::from(v.clone()))))
            .collect()
    }
}

pub struct Service1 {
    pub(crate) uuid: String,
    pub(crate) device: OwnedObjectPath,
}

#[interface(name = "org.bluez.GattService1")]
impl Service1 {
    #[zbus(property, name = "UUID")]
    fn uuid(&self) -> String {
        self.uuid.clone()
    }
    #[zbus(property)]
    fn primary(&self) -> bool {
        true
    }
    #[zbus(property)]
    fn device(&self) -> OwnedObjectPath {
        self.device.clone()
    }
}

pub struct Characteristic1 {
    pub(crate) world: Arc<World>,
    pub(crate) dev: Arc<DevShared>,
    pub(crate) uuid: u16,
    pub(crate) service: OwnedObjectPath,
}

impl Characteristic1 {
    fn check(&self, flag: &str) -> Result<(), BluezError> {
        let s = self.dev.state.lock().unwrap();
        if !s.connected {
            return Err(BluezError::NotConnected("Not Connected".into()));
        }
        let c = &s.chars[&self.uuid];
        if !c.flags.contains(&flag) {
            return Err(BluezError::NotPermitted(format!("{flag} not permitted")));
        }
        Ok(())
    }
}

#[interface(name = "org.bluez.GattCharacteristic1")]
impl Characteristic1 {
    async fn read_value(
        &self,
        _options: HashMap<String, OwnedValue>,
    ) -> Result<Vec<u8>, BluezError> {
        self.check("read")?;
        Ok(self.dev.state.lock().unwrap().chars[&self.uuid]
            .value
            .clone())
    }

    async fn write_value(
        &self,
        value: Vec<u8>,
        _options: HashMap<String, OwnedValue>,
    ) -> Result<(), BluezError> {
        self.check("write")?;
        self.dev
            .state
            .lock()
            .unwrap()
            .chars
            .get_mut(&self.uuid)
            .expect("characteristic")
            .value = value.clone();
        let tx = self.dev.writes.lock().unwrap().get(&self.uuid).cloned();
        if let Some(tx) = tx {
            let _ = tx.try_send(value);
        }
        Ok(())
    }

    async fn start_notify(&self) -> Result<(), BluezError> {
        {
            let s = self.dev.state.lock().unwrap();
            let flags = &s.chars[&self.uuid].flags;
            if !s.connected {
                return Err(BluezError::NotConnected("Not Connected".into()));
            }
            if !flags.contains(&"notify") && !flags.contains(&"indicate") {
                return Err(BluezError::NotPermitted("notify not permitted".into()));
            }
        }
        let path = {
            let mut s = self.dev.state.lock().unwrap();
            let c = s.chars.get_mut(&self.uuid).expect("characteristic");
            c.notifying = true;
            c.path.clone()
        };
        self.world
            .emit(
                &path,
                "org.bluez.GattCharacteristic1",
                "Notifying",
                Value::from(true),
            )
            .await;
        self.dev.changed.send_modify(|g| *g += 1);
        Ok(())
    }

    async fn stop_notify(&self) -> Result<(), BluezError> {
        if let Some(c) = self.dev.state.lock().unwrap().chars.get_mut(&self.uuid) {
            c.notifying = false;
        }
        Ok(())
    }

    #[zbus(property, name = "UUID")]
    fn uuid(&self) -> String {
        uuid16(self.uuid)
    }
    #[zbus(property)]
    fn service(&self) -> OwnedObjectPath {
        self.service.clone()
    }
    #[zbus(property)]
    fn value(&self) -> Vec<u8> {
        self.dev.state.lock().unwrap().chars[&self.uuid]
            .value
            .clone()
    }
    #[zbus(property)]
    fn notifying(&self) -> bool {
        self.dev.state.lock().unwrap().chars[&self.uuid].notifying
    }
    #[zbus(property)]
    fn flags(&self) -> Vec<String> {
        self.dev.state.lock().unwrap().chars[&self.uuid]
            .flags
            .iter()
            .map(|f| f.to_string())
            .collect()
    }
}
