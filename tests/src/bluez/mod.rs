//! A simulated BlueZ, served with zbus on a private `dbus-daemon`, that the real `hearthd` (btleplug) talks to
//! through `DBUS_SYSTEM_BUS_ADDRESS`.
//!
//! It implements what btleplug needs (see shared/TESTING-NOTES.md): the name `org.bluez`, an ObjectManager at `/`,
//! `Adapter1` at `/org/bluez/hci0` (discovery, `Powered`), `Device1` per peripheral (Connect returns once
//! `ServicesResolved` is true), and `GattService1`/`GattCharacteristic1` children named `serviceXXXX`/`charXXXX`
//! (found by introspection). Notifications and indications are `PropertiesChanged(Value)`.
//!
//! Peripherals are scriptable from the test through [`SimDevice`]: notify a value, see what the hub wrote, disconnect,
//! stop advertising (out of range), change service data (BTHome), make the next connect fail. The adapter can be
//! wedged ([`SimBluez::wedge`]): discovery and connects then answer `org.bluez.Error.InProgress` and nothing is heard
//! until the adapter is powered off and on again — what a stuck controller looks like from user space.
//!
//! While discovery is on, every advertising, unconnected peripheral "advertises" every 200 ms (its RSSI moves by one,
//! which BlueZ reports as a property change).

mod dbus_daemon;
mod objects;
pub mod profiles;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use zbus::Connection;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, Value};

pub use dbus_daemon::DbusDaemon;
use objects::{Adapter1, Characteristic1, Device1, Service1};

pub const ADAPTER_PATH: &str = "/org/bluez/hci0";

/// A 16-bit SIG UUID in BlueZ's string form.
pub fn uuid16(u: u16) -> String {
    format!("0000{u:04x}-0000-1000-8000-00805f9b34fb")
}

/// One characteristic of a simulated peripheral.
#[derive(Clone, Debug)]
pub struct CharSpec {
    pub uuid: u16,
    /// BlueZ flags: "read", "write", "notify", "indicate".
    pub flags: Vec<&'static str>,
    pub value: Vec<u8>,
}

impl CharSpec {
    pub fn new(uuid: u16, flags: &[&'static str], value: &[u8]) -> CharSpec {
        CharSpec {
            uuid,
            flags: flags.to_vec(),
            value: value.to_vec(),
        }
    }
}

/// One service.
#[derive(Clone, Debug)]
pub struct ServiceSpec {
    pub uuid: u16,
    pub chars: Vec<CharSpec>,
}

/// A peripheral as it first appears.
#[derive(Clone, Debug, Default)]
pub struct PeripheralSpec {
    pub address: String,
    pub name: Option<String>,
    pub rssi: i16,
    pub services: Vec<ServiceSpec>,
    /// Service UUIDs in its adverts.
    pub advertised: Vec<u16>,
    pub service_data: BTreeMap<u16, Vec<u8>>,
    pub manufacturer_data: BTreeMap<u16, Vec<u8>>,
}

#[derive(Debug, Default)]
pub(crate) struct CharState {
    pub uuid: u16,
    pub flags: Vec<&'static str>,
    pub value: Vec<u8>,
    pub notifying: bool,
    pub path: String,
}

#[derive(Debug, Default)]
pub(crate) struct DevState {
    pub address: String,
    pub name: Option<String>,
    pub rssi: i16,
    pub advertising: bool,
    pub connected: bool,
    pub resolved: bool,
    pub advertised: Vec<u16>,
    pub service_data: BTreeMap<u16, Vec<u8>>,
    pub manufacturer_data: BTreeMap<u16, Vec<u8>>,
    pub chars: BTreeMap<u16, CharState>,
    /// Errors the next connects answer (`org.bluez.Error.` + name).
    pub fail_connect: VecDeque<&'static str>,
    pub connects: u32,
}

pub(crate) struct DevShared {
    pub path: String,
    pub state: Mutex<DevState>,
    pub writes: Mutex<HashMap<u16, mpsc::Sender<Vec<u8>>>>,
    /// Bumped on every change a test may wait for.
    pub changed: watch::Sender<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct AdapterState {
    pub powered: bool,
    pub discovering: bool,
    pub wedged: bool,
    pub power_cycles: u32,
    pub discovery_errors: u32,
}

pub(crate) struct World {
    pub conn: std::sync::OnceLock<Connection>,
    pub adapter: Mutex<AdapterState>,
    pub devices: Mutex<BTreeMap<String, Arc<DevShared>>>,
}

impl World {
    fn conn(&self) -> &Connection {
        self.conn.get().expect("connection set at start")
    }

    /// Emits PropertiesChanged for one property.
    pub(crate) async fn emit(&self, path: &str, iface: &str, prop: &str, value: Value<'_>) {
        let Ok(emitter) = zbus::object_server::SignalEmitter::new(self.conn(), path.to_string())
        else {
            return;
        };
        let iface = zbus::names::InterfaceName::try_from(iface.to_string()).expect("iface name");
        let mut changed = HashMap::new();
        changed.insert(prop, value);
        let _ =
            zbus::fdo::Properties::properties_changed(&emitter, iface, changed, Default::default())
                .await;
    }

    /// Drops a peripheral's connection (and its subscriptions).
    pub(crate) async fn drop_connection(&self, dev: &DevShared) {
        let notifying: Vec<String> = {
            let mut s = dev.state.lock().unwrap();
            if !s.connected {
                return;
            }
            s.connected = false;
            s.resolved = false;
            s.chars
                .values_mut()
                .filter_map(|c| std::mem::take(&mut c.notifying).then(|| c.path.clone()))
                .collect()
        };
        for p in notifying {
            self.emit(
                &p,
                "org.bluez.GattCharacteristic1",
                "Notifying",
                Value::from(false),
            )
            .await;
        }
        self.emit(
            &dev.path,
            "org.bluez.Device1",
            "ServicesResolved",
            Value::from(false),
        )
        .await;
        self.emit(
            &dev.path,
            "org.bluez.Device1",
            "Connected",
            Value::from(false),
        )
        .await;
        dev.changed.send_modify(|g| *g += 1);
    }

    pub(crate) async fn drop_all(&self) {
        let devs: Vec<Arc<DevShared>> = self.devices.lock().unwrap().values().cloned().collect();
        for d in devs {
            self.drop_connection(&d).await;
        }
    }
}

/// The simulated BlueZ and its bus. Dropping it stops both.
pub struct SimBluez {
    world: Arc<World>,
    bus: DbusDaemon,
    advertiser: tokio::task::JoinHandle<()>,
}

/// The object path BlueZ gives a device.
pub fn device_path(address: &str) -> String {
    format!(
        "{ADAPTER_PATH}/dev_{}",
        address.replace(':', "_").to_uppercase()
    )
}

impl SimBluez {
    /// Starts a private bus and serves an adapter (powered, not discovering) on it.
    pub async fn start() -> SimBluez {
        SimBluez::start_on(DbusDaemon::start()).await
    }

    /// Serves BlueZ on a bus that is already running (BlueZ starting after the hub).
    pub async fn start_on(bus: DbusDaemon) -> SimBluez {
        let world = Arc::new(World {
            conn: Default::default(),
            adapter: Mutex::new(AdapterState {
                powered: true,
                ..Default::default()
            }),
            devices: Mutex::new(BTreeMap::new()),
        });
        let conn = zbus::connection::Builder::address(bus.address())
            .expect("bus address")
            .name("org.bluez")
            .expect("name")
            .serve_at("/", zbus::fdo::ObjectManager)
            .expect("object manager")
            .serve_at(
                ADAPTER_PATH,
                Adapter1 {
                    world: world.clone(),
                },
            )
            .expect("adapter")
            .build()
            .await
            .expect("connect the simulated BlueZ to its bus");
        let _ = world.conn.set(conn);
        let advertiser = tokio::spawn(advertise(world.clone()));
        SimBluez {
            world,
            bus,
            advertiser,
        }
    }

    /// For `DBUS_SYSTEM_BUS_ADDRESS`.
    pub fn bus_address(&self) -> &str {
        self.bus.address()
    }

    /// Adds a peripheral (advertising).
    pub async fn add(&self, spec: PeripheralSpec) -> SimDevice {
        let path = device_path(&spec.address);
        let mut chars = BTreeMap::new();
        let mut handle = 0x10u16;
        let mut services = Vec::new();
        for s in &spec.services {
            let spath = format!("{path}/service{handle:04x}");
            handle += 1;
            services.push((spath.clone(), s.uuid));
            for c in &s.chars {
                let cpath = format!("{spath}/char{handle:04x}");
                handle += 2;
                chars.insert(
                    c.uuid,
                    CharState {
                        uuid: c.uuid,
                        flags: c.flags.clone(),
                        value: c.value.clone(),
                        notifying: false,
                        path: cpath,
                    },
                );
            }
        }
        let (changed, _) = watch::channel(0);
        let dev = Arc::new(DevShared {
            path: path.clone(),
            state: Mutex::new(DevState {
                address: spec.address.to_uppercase(),
                name: spec.name.clone(),
                rssi: spec.rssi,
                advertising: true,
                advertised: spec.advertised.clone(),
                service_data: spec.service_data.clone(),
                manufacturer_data: spec.manufacturer_data.clone(),
                chars: BTreeMap::new(),
                ..Default::default()
            }),
            writes: Mutex::new(HashMap::new()),
            changed,
        });
        let char_paths: Vec<(String, String, u16)> = chars
            .values()
            .map(|c| {
                let spath = c
                    .path
                    .rsplit_once('/')
                    .map(|(s, _)| s.to_string())
                    .unwrap_or_default();
                (c.path.clone(), spath, c.uuid)
            })
            .collect();
        dev.state.lock().unwrap().chars = chars;
        self.world
            .devices
            .lock()
            .unwrap()
            .insert(spec.address.to_uppercase(), dev.clone());
        let server = self.world.conn().object_server();
        // Children first: the device's InterfacesAdded then finds its GATT database complete.
        for (spath, uuid) in &services {
            server
                .at(
                    spath.as_str(),
                    Service1 {
                        uuid: uuid16(*uuid),
                        device: OwnedObjectPath::try_from(path.clone()).expect("path"),
                    },
                )
                .await
                .expect("serve service");
        }
        for (cpath, spath, uuid) in char_paths {
            server
                .at(
                    cpath.as_str(),
                    Characteristic1 {
                        world: self.world.clone(),
                        dev: dev.clone(),
                        uuid,
                        service: OwnedObjectPath::try_from(spath).expect("path"),
                    },
                )
                .await
                .expect("serve characteristic");
        }
        server
            .at(
                path.as_str(),
                Device1 {
                    world: self.world.clone(),
                    dev: dev.clone(),
                },
            )
            .await
            .expect("serve device");
        SimDevice {
            world: self.world.clone(),
            dev,
        }
    }

    /// Makes the adapter wedge: connections drop, discovery stops, and discovery and connects answer `InProgress`
    /// until the adapter is power-cycled.
    pub async fn wedge(&self) {
        {
            let mut a = self.world.adapter.lock().unwrap();
            a.wedged = true;
            a.discovering = true; // stuck "on" as far as BlueZ is concerned, but nothing arrives
        }
        self.world.drop_all().await;
    }

    pub fn power_cycles(&self) -> u32 {
        self.world.adapter.lock().unwrap().power_cycles
    }

    pub fn discovery_errors(&self) -> u32 {
        self.world.adapter.lock().unwrap().discovery_errors
    }

    pub fn is_wedged(&self) -> bool {
        self.world.adapter.lock().unwrap().wedged
    }
}

impl Drop for SimBluez {
    fn drop(&mut self) {
        self.advertiser.abort();
    }
}

/// While discovering, each advertising unconnected peripheral moves its RSSI by one every 200 ms (an advert).
async fn advertise(world: Arc<World>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let on = {
            let a = world.adapter.lock().unwrap();
            a.discovering && a.powered && !a.wedged
        };
        if !on {
            continue;
        }
        let devs: Vec<Arc<DevShared>> = world.devices.lock().unwrap().values().cloned().collect();
        for d in devs {
            let rssi = {
                let mut s = d.state.lock().unwrap();
                if !s.advertising || s.connected {
                    continue;
                }
                s.rssi = if s.rssi % 2 == 0 {
                    s.rssi - 1
                } else {
                    s.rssi + 1
                };
                s.rssi
            };
            world
                .emit(&d.path, "org.bluez.Device1", "RSSI", Value::from(rssi))
                .await;
        }
    }
}

/// A test's handle on one simulated peripheral.
#[derive(Clone)]
pub struct SimDevice {
    world: Arc<World>,
    dev: Arc<DevShared>,
}

impl SimDevice {
    fn char_path(&self, uuid: u16) -> String {
        self.dev
            .state
            .lock()
            .unwrap()
            .chars
            .get(&uuid)
            .map(|c| c.path.clone())
            .unwrap_or_else(|| panic!("no characteristic 0x{uuid:04X}"))
    }

    /// Notifies (or indicates) a value; returns false if the hub is not subscribed (then nothing is sent).
    pub async fn notify(&self, uuid: u16, value: &[u8]) -> bool {
        let path = self.char_path(uuid);
        {
            let mut s = self.dev.state.lock().unwrap();
            let connected = s.connected;
            let c = s.chars.get_mut(&uuid).expect("characteristic");
            c.value = value.to_vec();
            if !(c.notifying && connected) {
                return false;
            }
        }
        self.world
            .emit(
                &path,
                "org.bluez.GattCharacteristic1",
                "Value",
                Value::from(value.to_vec()),
            )
            .await;
        true
    }

    /// The value a later read returns.
    pub fn set_value(&self, uuid: u16, value: &[u8]) {
        let mut s = self.dev.state.lock().unwrap();
        s.chars.get_mut(&uuid).expect("characteristic").value = value.to_vec();
    }

    pub fn value(&self, uuid: u16) -> Vec<u8> {
        self.dev.state.lock().unwrap().chars[&uuid].value.clone()
    }

    /// What the hub writes to `uuid` from now on (one receiver per characteristic).
    pub fn writes(&self, uuid: u16) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel(64);
        self.dev.writes.lock().unwrap().insert(uuid, tx);
        rx
    }

    /// Drops the connection from the device's side.
    pub async fn disconnect(&self) {
        self.world.drop_connection(&self.dev).await;
    }

    /// In range (advertising) or not. Going out of range drops the connection.
    pub async fn set_in_range(&self, on: bool) {
        self.dev.state.lock().unwrap().advertising = on;
        if !on {
            self.disconnect().await;
        }
        self.dev.changed.send_modify(|g| *g += 1);
    }

    /// New service data in its adverts (BTHome), reported as BlueZ does: a ServiceData property change.
    pub async fn advertise_service_data(&self, uuid: u16, data: &[u8]) {
        let dict = {
            let mut s = self.dev.state.lock().unwrap();
            s.service_data.insert(uuid, data.to_vec());
            objects::service_data_value(&s.service_data)
        };
        self.world
            .emit(&self.dev.path, "org.bluez.Device1", "ServiceData", dict)
            .await;
    }

    /// The next connects fail with `org.bluez.Error.{name}`.
    pub fn fail_next_connect(&self, name: &'static str) {
        self.dev.state.lock().unwrap().fail_connect.push_back(name);
    }

    pub fn connects(&self) -> u32 {
        self.dev.state.lock().unwrap().connects
    }

    pub fn is_connected(&self) -> bool {
        self.dev.state.lock().unwrap().connected
    }

    pub fn is_subscribed(&self, uuid: u16) -> bool {
        let s = self.dev.state.lock().unwrap();
        s.connected && s.chars.get(&uuid).is_some_and(|c| c.notifying)
    }

    /// Waits until `pred` holds of the device (checked after every change), at most `timeout`.
    pub async fn wait(&self, what: &str, timeout: Duration, pred: impl Fn(&SimDevice) -> bool) {
        let mut rx = self.dev.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                panic!("simulated peripheral: {what} not reached within {timeout:?}");
            }
        }
    }

    /// Waits until the hub is connected and subscribed to `uuid`.
    pub async fn wait_subscribed(&self, uuid: u16, timeout: Duration) {
        self.wait(&format!("subscription to 0x{uuid:04X}"), timeout, |d| {
            d.is_subscribed(uuid)
        })
        .await;
    }

    pub fn path(&self) -> ObjectPath<'_> {
        ObjectPath::try_from(self.dev.path.as_str()).expect("path")
    }
}
