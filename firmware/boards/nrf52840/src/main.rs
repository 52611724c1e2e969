//! Hearth's sensor board on an nRF52840: a Bluetooth LE peripheral exposing the standard SIG health services, fed
//! by the `hearth-firmware` drivers and signal processing, with values encoded by the protocol crate's GATT
//! encoders (through `hearth_firmware::uplink`):
//!
//! | service | characteristic | source |
//! |---|---|---|
//! | Health Thermometer 0x1809 | Temperature Measurement 0x2A1C (indicate) | TMP1xx over I2C, every 30 s |
//! | Pulse Oximeter 0x1822 | PLX Spot-check Measurement 0x2A5E (indicate), PLX Features 0x2A60 (read) | MAX30102 over I2C, an 8 s window at 25 samples/s → HR, SpO2 (or NaN + the reason bit) |
//! | Weight Scale 0x181D | Weight Measurement 0x2A9D (indicate), Weight Scale Feature 0x2A9E (read) | HX711 load cell, 10 samples/s → one reading per settled weighing |
//! | Battery 0x180F | Battery Level 0x2A19 (read, notify) | VDD through the SAADC |
//!
//! The BLE stack is TrouBLE (host) over Nordic's SoftDevice Controller and MPSL (`nrf-sdc`), on embassy.
//!
//! Wiring (nRF52840-DK Arduino header): I2C SDA P0.26, SCL P0.27 (TMP102/TMP105 at 0x48, MAX30102 at 0x57);
//! HX711 DOUT P0.03, SCK P0.04. A sensor that is missing is logged and its service stays silent; the others run.
#![no_std]
#![no_main]

mod sensors;

use defmt::{info, warn};
use embassy_executor::Spawner;
use embassy_futures::join::join;
use embassy_futures::select::{Either, select};
use embassy_nrf::peripherals::RNG;
use embassy_nrf::{bind_interrupts, rng, saadc, twim};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::channel::Channel;
use nrf_sdc::mpsl::MultiprotocolServiceLayer;
use nrf_sdc::{self as sdc, mpsl};
use static_cell::StaticCell;
use trouble_host::prelude::*;
use {defmt_rtt as _, panic_probe as _};

use sensors::Reading;

bind_interrupts!(struct Irqs {
    RNG => rng::InterruptHandler<RNG>;
    EGU0_SWI0 => mpsl::LowPrioInterruptHandler;
    CLOCK_POWER => mpsl::ClockInterruptHandler;
    RADIO => mpsl::HighPrioInterruptHandler;
    TIMER0 => mpsl::HighPrioInterruptHandler;
    RTC0 => mpsl::HighPrioInterruptHandler;
    TWISPI0 => twim::InterruptHandler<embassy_nrf::peripherals::TWISPI0>;
    SAADC => saadc::InterruptHandler;
});

const CONNECTIONS_MAX: usize = 1;
/// Signalling + ATT.
const L2CAP_CHANNELS_MAX: usize = 2;
const L2CAP_TXQ: u8 = 4;
const L2CAP_RXQ: u8 = 4;
/// Longest characteristic value (PLX Spot-check with its status field).
const VALUE_MAX: usize = hearth_firmware::uplink::GATT_VALUE_MAX;
type Value = heapless::Vec<u8, VALUE_MAX>;

#[gatt_server]
struct Server {
    thermometer: HealthThermometer,
    oximeter: PulseOximeter,
    scale: WeightScale,
    battery: Battery,
}

#[gatt_service(uuid = service::HEALTH_THERMOMETER)]
struct HealthThermometer {
    #[characteristic(uuid = characteristic::TEMPERATURE_MEASUREMENT, indicate)]
    measurement: Value,
}

#[gatt_service(uuid = service::PULSE_OXIMETER)]
struct PulseOximeter {
    #[characteristic(uuid = characteristic::PLX_SPOT_CHECK_MEASUREMENT, indicate)]
    spot_check: Value,
    /// Supported features: measurement status and device/sensor status fields (bits 0 and 1); no extras.
    #[characteristic(uuid = characteristic::PLX_FEATURES, read, value = [0x03, 0x00])]
    features: [u8; 2],
}

#[gatt_service(uuid = service::WEIGHT_SCALE)]
struct WeightScale {
    #[characteristic(uuid = characteristic::WEIGHT_MEASUREMENT, indicate)]
    measurement: Value,
    /// No timestamp, no users, no BMI; weight resolution 0.005 kg (bits 3–6 = 7).
    #[characteristic(uuid = characteristic::WEIGHT_SCALE_FEATURE, read, value = [0x38, 0x00, 0x00, 0x00])]
    features: [u8; 4],
}

#[gatt_service(uuid = service::BATTERY)]
struct Battery {
    #[characteristic(uuid = characteristic::BATTERY_LEVEL, read, notify, value = 100)]
    level: u8,
}

/// Readings from the sensor task to the BLE side (bounded: a slow link drops the oldest reading's turn, never
/// blocks the sampling).
static READINGS: StaticCell<Channel<NoopRawMutex, Reading, 8>> = StaticCell::new();

#[embassy_executor::task]
async fn mpsl_task(mpsl: &'static MultiprotocolServiceLayer<'static>) -> ! {
    mpsl.run().await
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_nrf::init(Default::default());
    let mpsl_p =
        mpsl::Peripherals::new(p.RTC0, p.TIMER0, p.TEMP, p.PPI_CH19, p.PPI_CH30, p.PPI_CH31);
    // The internal RC oscillator as the low-frequency clock: works on boards without the 32 kHz crystal.
    let lfclk_cfg = mpsl::raw::mpsl_clock_lfclk_cfg_t {
        source: mpsl::raw::MPSL_CLOCK_LF_SRC_RC as u8,
        rc_ctiv: mpsl::raw::MPSL_RECOMMENDED_RC_CTIV as u8,
        rc_temp_ctiv: mpsl::raw::MPSL_RECOMMENDED_RC_TEMP_CTIV as u8,
        accuracy_ppm: mpsl::raw::MPSL_DEFAULT_CLOCK_ACCURACY_PPM as u16,
        skip_wait_lfclk_started: mpsl::raw::MPSL_DEFAULT_SKIP_WAIT_LFCLK_STARTED != 0,
    };
    static MPSL: StaticCell<MultiprotocolServiceLayer> = StaticCell::new();
    let Ok(layer) = MultiprotocolServiceLayer::new(mpsl_p, Irqs, lfclk_cfg) else {
        panic!("MPSL init failed")
    };
    let mpsl = MPSL.init(layer);
    spawner.spawn(mpsl_task(mpsl).unwrap_or_else(|_| panic!("mpsl task")));

    let sdc_p = sdc::Peripherals::new(
        p.PPI_CH17, p.PPI_CH18, p.PPI_CH20, p.PPI_CH21, p.PPI_CH22, p.PPI_CH23, p.PPI_CH24,
        p.PPI_CH25, p.PPI_CH26, p.PPI_CH27, p.PPI_CH28, p.PPI_CH29,
    );
    static RNG_CELL: StaticCell<rng::Rng<'static, embassy_nrf::mode::Async>> = StaticCell::new();
    let rng = RNG_CELL.init(rng::Rng::new(p.RNG, Irqs));
    static SDC_MEM: StaticCell<sdc::Mem<4096>> = StaticCell::new();
    let mem = SDC_MEM.init(sdc::Mem::new());
    let controller = match sdc::Builder::new()
        .map(|b| b.support_adv().support_peripheral())
        .and_then(|b| b.peripheral_count(1))
        .and_then(|b| {
            b.buffer_cfg(
                DefaultPacketPool::MTU as u16,
                DefaultPacketPool::MTU as u16,
                L2CAP_TXQ,
                L2CAP_RXQ,
            )
        })
        .and_then(|b| b.build(sdc_p, rng, mpsl, mem))
    {
        Ok(c) => c,
        Err(_) => panic!("SoftDevice Controller init failed"),
    };

    let readings = READINGS.init(Channel::new());
    let hw = sensors::Hardware {
        twim: p.TWISPI0,
        sda: p.P0_26,
        scl: p.P0_27,
        hx_dout: p.P0_03,
        hx_sck: p.P0_04,
        saadc: p.SAADC,
    };
    spawner.spawn(sensors::task(hw, readings.sender()).unwrap_or_else(|_| panic!("sensor task")));
    ble(controller, readings).await;
}

async fn ble<C: Controller>(controller: C, readings: &'static Channel<NoopRawMutex, Reading, 8>) {
    // A static random address derived from the chip's FICR device id would be better; this is fixed per build.
    let address = Address::random([0xc0, 0x48, 0x45, 0x41, 0x52, 0xd4]);
    let mut resources: HostResources<DefaultPacketPool, CONNECTIONS_MAX, L2CAP_CHANNELS_MAX> =
        HostResources::new();
    let stack = trouble_host::new(controller, &mut resources)
        .set_random_address(address)
        .build();
    let mut runner = stack.runner();
    let mut peripheral = stack.peripheral();
    let Ok(server) = Server::new_with_config(GapConfig::Peripheral(PeripheralConfig {
        name: "Hearth sensor",
        appearance: &appearance::thermometer::GENERIC_THERMOMETER,
    })) else {
        panic!("GATT table")
    };
    let _ = join(runner.run(), async {
        loop {
            match advertise(&mut peripheral, &server).await {
                Ok(conn) => serve(&server, &conn, readings).await,
                Err(e) => warn!("advertising failed: {:?}", defmt::Debug2Format(&e)),
            }
        }
    })
    .await;
}

async fn advertise<'values, 'server, C: Controller>(
    peripheral: &mut Peripheral<'values, C, DefaultPacketPool>,
    server: &'server Server<'values>,
) -> Result<GattConnection<'values, 'server, DefaultPacketPool>, BleHostError<C::Error>> {
    let mut adv_data = [0; 31];
    let len = AdStructure::encode_slice(
        &[
            AdStructure::Flags(LE_GENERAL_DISCOVERABLE | BR_EDR_NOT_SUPPORTED),
            AdStructure::CompleteServiceUuids16(&[
                [0x09, 0x18], // Health Thermometer
                [0x22, 0x18], // Pulse Oximeter
                [0x1d, 0x18], // Weight Scale
                [0x0f, 0x18], // Battery
            ]),
            AdStructure::CompleteLocalName(b"Hearth"),
        ],
        &mut adv_data[..],
    )?;
    let advertiser = peripheral
        .advertise(
            &Default::default(),
            Advertisement::ConnectableScannableUndirected {
                adv_data: &adv_data[..len],
                scan_data: &[],
            },
        )
        .await?;
    info!("advertising");
    let conn = advertiser.accept().await?.with_attribute_server(server)?;
    info!("connected");
    Ok(conn)
}

/// Serves one connection: GATT requests, and each new reading indicated (or notified) on its characteristic.
async fn serve(
    server: &Server<'_>,
    conn: &GattConnection<'_, '_, DefaultPacketPool>,
    readings: &Channel<NoopRawMutex, Reading, 8>,
) {
    loop {
        match select(conn.next(), readings.receive()).await {
            Either::First(GattConnectionEvent::Disconnected { reason }) => {
                info!("disconnected: {:?}", reason);
                return;
            }
            Either::First(GattConnectionEvent::Gatt { event }) => {
                if let Ok(reply) = event.accept() {
                    reply.send().await;
                }
            }
            Either::First(_) => {}
            Either::Second(r) => {
                let sent = match r {
                    Reading::Temperature(v) => {
                        server
                            .thermometer
                            .measurement
                            .indicate(conn, &v, true)
                            .await
                    }
                    Reading::SpotCheck(v) => {
                        server.oximeter.spot_check.indicate(conn, &v, true).await
                    }
                    Reading::Weight(v) => server.scale.measurement.indicate(conn, &v, true).await,
                    Reading::Battery(pct) => server.battery.level.notify(conn, &pct, true).await,
                };
                if sent.is_err() {
                    // Not subscribed, or the link is going: the value stays readable where the characteristic is.
                    warn!("a reading was not delivered");
                }
            }
        }
    }
}
