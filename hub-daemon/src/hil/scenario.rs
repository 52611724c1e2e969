//! HIL scenario files (TOML, under `tests/hil/`): the hub rules in force, the stimulus over time, and the outcomes
//! expected at the hub and upstream. The format is documented in docs/firmware.md ("HIL scenarios").

use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Hub rules, exactly hearthd's `[[rules]]` (checked by the hub's own configuration loader).
    #[serde(default)]
    pub rules: Vec<toml::Table>,
    #[serde(rename = "step", default)]
    pub steps: Vec<Step>,
    #[serde(rename = "expect", default)]
    pub expects: Vec<Expect>,
}

/// One stimulus. Exactly one action key per step; `times` and `every_s` repeat it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Set the emulated TMP105 (QMP `qom-set`) — on a bench, the operator is asked to.
    pub temperature_c: Option<f64>,
    /// Ask the board to read a sensor: `temp`.
    pub read: Option<String>,
    /// Inject one 8 s PPG window (200 samples at 25 Hz) synthesised at this rate and ratio of ratios.
    pub ppg: Option<Ppg>,
    /// Inject an accelerometer trace at its real rate (100 Hz): `fall`, `sit_down`, `stumble`, `fall_and_get_up`.
    pub accel: Option<String>,
    /// Reset the board mid-stream: `qmp` (QEMU `system_reset`) or `board` (the board's own `SYSRESETREQ`).
    pub reset: Option<String>,
    /// Stop (`down`) or restart (`up`) the hub daemon; the database is kept.
    pub hub: Option<String>,
    /// Move the hub's clock forward (simulated time; the board keeps its own clock).
    pub advance_s: Option<u64>,
    /// Wait until the board has no unacknowledged frame.
    pub settle: Option<bool>,
    /// Repeat the action this many times (default 1)…
    pub times: Option<u32>,
    /// …moving the hub's clock this far before each repeat after the first.
    pub every_s: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ppg {
    pub bpm: f32,
    pub r: f32,
    #[serde(default)]
    pub motion: bool,
}

/// What must be true at the end. Alerts are checked where they matter: received by the community hub.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub check: Check,
    /// `alert`, `no_alert`, `readings`: the observation code.
    pub code: Option<String>,
    /// `alert`: at least this severity.
    pub severity: Option<String>,
    /// `alert`: raised at most this long after the impact sample of the last `accel` step (hub clock).
    pub within_s_of_impact: Option<f64>,
    /// `readings`: exactly this many readings with `code` stored at the hub.
    pub count: Option<u32>,
    /// `buffered`: the board held at least this many unacknowledged frames at some point…
    pub at_least: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Alert,
    NoAlert,
    Readings,
    /// Every sequence number the board used is stored exactly once; none is refused or missing.
    Sequence,
    /// …and ended with none (drained), having dropped none.
    Buffered,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}: cannot read: {1}")]
    Read(String, std::io::Error),
    #[error("{0}: {1}")]
    Parse(String, String),
    #[error("{file}: step {n}: {msg}")]
    Step { file: String, n: usize, msg: String },
    #[error("{file}: expect {n}: {msg}")]
    Expect { file: String, n: usize, msg: String },
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| ScenarioError::Read(file.clone(), e))?;
        Scenario::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario =
            toml::from_str(text).map_err(|e| ScenarioError::Parse(file.into(), e.to_string()))?;
        for (i, step) in s.steps.iter().enumerate() {
            step.validate().map_err(|msg| ScenarioError::Step {
                file: file.into(),
                n: i + 1,
                msg,
            })?;
        }
        for (i, e) in s.expects.iter().enumerate() {
            e.validate().map_err(|msg| ScenarioError::Expect {
                file: file.into(),
                n: i + 1,
                msg,
            })?;
        }
        Ok(s)
    }
}

impl Step {
    fn actions(&self) -> usize {
        [
            self.temperature_c.is_some(),
            self.read.is_some(),
            self.ppg.is_some(),
            self.accel.is_some(),
            self.reset.is_some(),
            self.hub.is_some(),
            self.advance_s.is_some(),
            self.settle.is_some(),
        ]
        .iter()
        .filter(|&&b| b)
        .count()
    }

    fn validate(&self) -> Result<(), String> {
        if self.actions() != 1 {
            return Err("expected exactly one of temperature_c, read, ppg, accel, reset, hub, advance_s, settle".into());
        }
        if let Some(r) = &self.read
            && r != "temp"
        {
            return Err(format!("read = {r:?}: expected \"temp\""));
        }
        if let Some(a) = &self.accel
            && super::stimulus::trace(a).is_none()
        {
            return Err(format!(
                "accel = {a:?}: expected fall, sit_down, stumble or fall_and_get_up"
            ));
        }
        if let Some(r) = &self.reset
            && r != "qmp"
            && r != "board"
        {
            return Err(format!("reset = {r:?}: expected \"qmp\" or \"board\""));
        }
        if let Some(h) = &self.hub
            && h != "down"
            && h != "up"
        {
            return Err(format!("hub = {h:?}: expected \"down\" or \"up\""));
        }
        if let Some(t) = self.temperature_c
            && !(-40.0..=125.0).contains(&t)
        {
            return Err("temperature_c: the TMP105 reads -40..125 °C".into());
        }
        if self.times == Some(0) {
            return Err("times: expected at least 1".into());
        }
        Ok(())
    }

    /// A short description for progress lines.
    pub fn describe(&self) -> String {
        let what = if let Some(t) = self.temperature_c {
            format!("thermometer at {t:.1} °C")
        } else if let Some(r) = &self.read {
            format!("read {r}")
        } else if let Some(p) = &self.ppg {
            format!(
                "PPG window {} bpm, R {}{}",
                p.bpm,
                p.r,
                if p.motion { ", with motion" } else { "" }
            )
        } else if let Some(a) = &self.accel {
            format!("accelerometer trace {a} at 100 Hz")
        } else if let Some(r) = &self.reset {
            format!("board reset ({r})")
        } else if let Some(h) = &self.hub {
            format!("hub {h}")
        } else if let Some(s) = self.advance_s {
            format!("hub clock +{s} s")
        } else {
            "wait until the board's buffer is acknowledged".into()
        };
        match (self.times, self.every_s) {
            (Some(n), Some(e)) if n > 1 => format!("{what} ×{n}, every {e} s (hub clock)"),
            (Some(n), None) if n > 1 => format!("{what} ×{n}"),
            _ => what,
        }
    }
}

impl Expect {
    fn validate(&self) -> Result<(), String> {
        let needs_code = matches!(self.check, Check::Alert | Check::NoAlert | Check::Readings);
        if needs_code && self.code.is_none() {
            return Err("expected code".into());
        }
        if self.check == Check::Readings && self.count.is_none() {
            return Err("readings: expected count".into());
        }
        if self.check == Check::Buffered && self.at_least.is_none() {
            return Err("buffered: expected at_least".into());
        }
        if let Some(s) = &self.severity
            && !["low", "medium", "high"].contains(&s.as_str())
        {
            return Err(format!("severity = {s:?}: expected low, medium or high"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_with_the_step_number() {
        let ok = r#"
            name = "x"
            [[rules]]
            code = "temp"
            above = 38.0
            severity = "medium"
            [[step]]
            temperature_c = 38.5
            [[step]]
            read = "temp"
            times = 3
            every_s = 20
            [[expect]]
            check = "alert"
            code = "temp"
        "#;
        let s = Scenario::parse(ok, "x.toml").unwrap();
        assert_eq!(s.steps.len(), 2);
        assert_eq!(
            s.steps[1].describe(),
            "read temp ×3, every 20 s (hub clock)"
        );
        let two_actions = "name = \"x\"\n[[step]]\nread = \"temp\"\nadvance_s = 3\n";
        let e = Scenario::parse(two_actions, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("step 1: expected exactly one"), "{e}");
        let bad_trace = "name = \"x\"\n[[step]]\nread = \"temp\"\n[[step]]\naccel = \"jump\"\n";
        let e = Scenario::parse(bad_trace, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("step 2: accel"), "{e}");
        let no_count = "name = \"x\"\n[[expect]]\ncheck = \"readings\"\ncode = \"temp\"\n";
        assert!(Scenario::parse(no_count, "x.toml").is_err());
    }
}
