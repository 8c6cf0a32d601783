//! A deployment strategy from Python arguments: `deploy(module, path, "canary",
//! stages=[5, 25, 100], stage_duration=30)` becomes the API's `Strategy` message, which a
//! host is sent as it is and an embedded runtime turns into its strategy by the host's
//! own code ([`polyglot_core::api::strategy`]). Durations are seconds (`int`/`float`) or
//! `datetime.timedelta`; a start time is a `datetime` or seconds since the Unix epoch.

use std::time::Duration;

use polyglot_core::api::{
    amount, DEFAULT_AB_DEADLINE, DEFAULT_GRACE, DEFAULT_SHADOW_DURATION, DEFAULT_STAGE_DURATION,
};
use polyglot_proto::v1 as pb;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::convert::type_name;

/// The strategy names `deploy` accepts (with `-` or `_`).
pub const NAMES: &str = "immediate, blue_green, rolling, canary, ab_test, shadow";

/// The options each strategy takes, for `deploy`'s errors.
fn options_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "blue_green" => &["grace", "deadline"],
        "rolling" => &["replicas", "max_surge", "max_unavailable", "deadline"],
        "canary" => &["stages", "stage_duration", "manual", "deadline"],
        "ab_test" => &["split", "deadline"],
        "shadow" => &["duration", "manual", "deadline"],
        _ => &[],
    }
}

/// The `Strategy` message for strategy `name` with `options` (the keyword arguments of
/// `deploy` beyond its own) and a start time `at`.
///
/// # Errors
/// `ValueError` for an unknown strategy or a value out of range, `TypeError` for an
/// option the strategy does not take or a value of the wrong type; each names the option.
pub fn from_python(
    name: &str,
    options: Option<&Bound<'_, PyDict>>,
    at: Option<&Bound<'_, PyAny>>,
) -> PyResult<pb::Strategy> {
    use pb::strategy::Kind;
    let kind = name.trim().to_ascii_lowercase().replace('-', "_");
    let allowed = options_of(&kind);
    let mut opts = Options::default();
    if let Some(d) = options {
        for (k, v) in d.iter() {
            let key: String = k.extract()?;
            if !allowed.contains(&key.as_str()) {
                let takes = if allowed.is_empty() {
                    "no options".to_owned()
                } else {
                    allowed.join(", ")
                };
                return Err(PyTypeError::new_err(format!(
                    "deploy() got an unexpected option {key:?} for the {kind} strategy \
                     (it takes {takes})"
                )));
            }
            opts.0.push((key, v.unbind()));
        }
    }
    let py = options.map(|d| d.py());
    let ms = |d: Duration| d.as_millis() as u64;
    let kind = match kind.as_str() {
        "immediate" => Kind::Immediate(pb::Immediate {}),
        "blue_green" => Kind::BlueGreen(pb::BlueGreen {
            grace_ms: ms(opts.duration(py, "grace")?.unwrap_or(DEFAULT_GRACE)),
            deadline_ms: opts.duration(py, "deadline")?.map_or(0, ms),
        }),
        "rolling" => Kind::Rolling(pb::Rolling {
            replicas: opts.int(py, "replicas")?.unwrap_or(0),
            max_surge: opts.amount(py, "max_surge")?.unwrap_or_default(),
            max_unavailable: opts.amount(py, "max_unavailable")?.unwrap_or_default(),
            progress_deadline_ms: opts.duration(py, "deadline")?.map_or(0, ms),
        }),
        "canary" => {
            let stages = opts.percents(py, "stages")?.ok_or_else(|| {
                PyTypeError::new_err(
                    "the canary strategy needs stages=[...], the new version's share of \
                     traffic at each stage (e.g. stages=[5, 25, 50, 100])",
                )
            })?;
            Kind::Canary(pb::Canary {
                percents: stages,
                stage_duration_ms: ms(opts
                    .duration(py, "stage_duration")?
                    .unwrap_or(DEFAULT_STAGE_DURATION)),
                manual: opts.flag(py, "manual")?,
                stage_deadline_ms: opts.duration(py, "deadline")?.map_or(0, ms),
            })
        }
        "ab_test" => Kind::AbTest(pb::AbTest {
            percent_b: opts.int(py, "split")?.ok_or_else(|| {
                PyTypeError::new_err(
                    "the ab_test strategy needs split=N, the new version's percent of the \
                     routing keys (1 to 99)",
                )
            })?,
            deadline_ms: ms(opts
                .duration(py, "deadline")?
                .unwrap_or(DEFAULT_AB_DEADLINE)),
        }),
        "shadow" => Kind::Shadow(pb::Shadow {
            duration_ms: ms(opts
                .duration(py, "duration")?
                .unwrap_or(DEFAULT_SHADOW_DURATION)),
            manual: opts.flag(py, "manual")?,
            deadline_ms: opts.duration(py, "deadline")?.map_or(0, ms),
        }),
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown strategy {other:?} (the strategies: {NAMES})"
            )))
        }
    };
    let scheduled_at_ms = at.map(start_time).transpose()?;
    Ok(pb::Strategy {
        kind: Some(kind),
        scheduled_at_ms,
    })
}

/// The options given, each taken once.
#[derive(Default)]
struct Options(Vec<(String, Py<PyAny>)>);

impl Options {
    fn take<'py>(&mut self, py: Option<Python<'py>>, key: &str) -> Option<Bound<'py, PyAny>> {
        let py = py?;
        let i = self.0.iter().position(|(k, _)| k == key)?;
        let v = self.0.swap_remove(i).1.into_bound(py);
        (!v.is_none()).then_some(v)
    }

    fn duration(&mut self, py: Option<Python<'_>>, key: &str) -> PyResult<Option<Duration>> {
        self.take(py, key).map(|v| duration(&v, key)).transpose()
    }

    fn int(&mut self, py: Option<Python<'_>>, key: &str) -> PyResult<Option<u32>> {
        self.take(py, key)
            .map(|v| {
                v.extract::<u32>().map_err(|_| {
                    PyValueError::new_err(format!(
                        "{key} must be a non-negative int, not {}",
                        type_name(&v)
                    ))
                })
            })
            .transpose()
    }

    fn flag(&mut self, py: Option<Python<'_>>, key: &str) -> PyResult<bool> {
        Ok(match self.take(py, key) {
            Some(v) => v.is_truthy()?,
            None => false,
        })
    }

    /// A count (`2`) or a percent (`"25%"`), as the API's string.
    fn amount(&mut self, py: Option<Python<'_>>, key: &str) -> PyResult<Option<String>> {
        self.take(py, key)
            .map(|v| {
                if let Ok(n) = v.extract::<u32>() {
                    return Ok(n.to_string());
                }
                if let Ok(s) = v.cast::<PyString>() {
                    let s = s.to_str()?.to_owned();
                    amount(key, &s).map_err(PyValueError::new_err)?;
                    return Ok(s);
                }
                Err(PyTypeError::new_err(format!(
                    "{key} must be a count (2) or a percent (\"25%\"), not {}",
                    type_name(&v)
                )))
            })
            .transpose()
    }

    fn percents(&mut self, py: Option<Python<'_>>, key: &str) -> PyResult<Option<Vec<u32>>> {
        self.take(py, key)
            .map(|v| {
                v.extract::<Vec<u32>>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "{key} must be a list of percents (e.g. [5, 25, 100]), not {}",
                        type_name(&v)
                    ))
                })
            })
            .transpose()
    }
}

/// Seconds (`int`, `float`) or a `timedelta`, not negative.
fn duration(v: &Bound<'_, PyAny>, key: &str) -> PyResult<Duration> {
    let secs: f64 = if v.hasattr("total_seconds")? {
        v.call_method0("total_seconds")?.extract()?
    } else {
        v.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "{key} must be seconds (int or float) or a datetime.timedelta, not {}",
                type_name(v)
            ))
        })?
    };
    Duration::try_from_secs_f64(secs).map_err(|_| {
        PyValueError::new_err(format!(
            "{key} must be a duration of 0 seconds or more, got {secs}"
        ))
    })
}

/// A `datetime` (naive ones are local time, as `datetime.timestamp` takes them) or
/// seconds since the Unix epoch, as milliseconds since the epoch.
fn start_time(v: &Bound<'_, PyAny>) -> PyResult<u64> {
    let secs: f64 = if v.hasattr("timestamp")? {
        v.call_method0("timestamp")?.extract()?
    } else {
        v.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "at must be a datetime or seconds since the Unix epoch, not {}",
                type_name(v)
            ))
        })?
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(PyValueError::new_err(format!(
            "at must be after 1970, got {secs}"
        )));
    }
    Ok((secs * 1000.0) as u64)
}
