//! The suggestion algorithms the emulator runs in-process, in place of Katib's algorithm
//! services (each a Deployment answering gRPC on port 6789 upstream):
//!
//! - `grid`, after katib v0.19.0 `pkg/suggestion/v1beta1/optuna/` (`service.py`:
//!   `_validate_grid_setting`; `base_service.py`: `_create_sampler`, `_ask`) over
//!   `pkg/suggestion/v1beta1/internal/search_space.py` (`convert_to_combinations`) and Optuna
//!   3.3's `GridSampler` (`optuna/samplers/_grid.py`): every grid point at most once, each ask
//!   taking a random unvisited point (not lexicographic order).
//! - `random`, after katib v0.19.0 `pkg/suggestion/v1beta1/hyperopt/` (`service.py`:
//!   `_validate_random_setting`; `base_service.py`: `create_hyperopt_domain`, `convert`) over
//!   hyperopt 0.2.5's `rand.suggest` (`hyperopt/pyll/stochastic.py`, `pyll_utils.py`).
//!
//! Values are strings as the services render them with Python's `str()` (`Assignment.generate`
//! in `internal/trial.py`): ints as `3`, floats as Python's shortest repr (`0.1`,
//! `0.15000000000000002`, `1e-05`), categorical values as listed. Error messages are the
//! services' (and Python's) words. The random draws use a seeded `StdRng`, not NumPy's
//! Mersenne Twister, so the values differ from upstream's for the same `random_state`; what
//! the contract fixes (ranges, quantisation, every grid point once) is the same.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::defects::tuning::Tuning;

/// A grid at most this large is enumerated to pick an unvisited point, as Optuna does; a
/// larger one is sampled by rejection (the emulator never builds a huge grid in memory).
const ENUMERATE_LIMIT: u64 = 1 << 20;

/// `parameterType` of an Experiment parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterType {
    /// `int`.
    Int,
    /// `double`.
    Double,
    /// `categorical`.
    Categorical,
    /// `discrete`.
    Discrete,
    /// Anything else (the gRPC conversion's `UNKNOWN_TYPE`).
    Unknown,
}

/// One entry of `spec.parameters`, its feasible space as the strings the API carries.
#[derive(Debug, Clone)]
pub struct Parameter {
    /// `name`.
    pub name: String,
    /// `parameterType`.
    pub kind: ParameterType,
    /// `feasibleSpace.min`.
    pub min: String,
    /// `feasibleSpace.max`.
    pub max: String,
    /// `feasibleSpace.step` ("" when absent).
    pub step: String,
    /// `feasibleSpace.list`.
    pub list: Vec<String>,
    /// `feasibleSpace.distribution` ("" when absent).
    pub distribution: String,
}

impl Parameter {
    /// The parameter an entry of `spec.parameters` describes.
    pub fn from_spec(spec: &Value) -> Self {
        let text = |ptr: &str| {
            spec.pointer(ptr)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let kind = match spec.get("parameterType").and_then(Value::as_str) {
            Some("int") => ParameterType::Int,
            Some("double") => ParameterType::Double,
            Some("categorical") => ParameterType::Categorical,
            Some("discrete") => ParameterType::Discrete,
            _ => ParameterType::Unknown,
        };
        let list = spec
            .pointer("/feasibleSpace/list")
            .and_then(Value::as_array)
            .map(|l| l.iter().map(scalar_text).collect())
            .unwrap_or_default();
        Self {
            name: text("/name"),
            kind,
            min: text("/feasibleSpace/min"),
            max: text("/feasibleSpace/max"),
            step: text("/feasibleSpace/step"),
            list,
            distribution: text("/feasibleSpace/distribution"),
        }
    }

    /// The distribution as the services see it: "" for uniform or unspecified.
    fn distribution(&self) -> &str {
        match self.distribution.as_str() {
            d @ ("logUniform" | "normal" | "logNormal") => d,
            _ => "",
        }
    }
}

/// A list entry as a string (the API types them as strings; be lenient with numbers).
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The parameters of an Experiment (`spec.parameters`), in order.
pub fn parameters(experiment: &Value) -> Vec<Parameter> {
    experiment
        .pointer("/spec/parameters")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().map(Parameter::from_spec).collect())
        .unwrap_or_default()
}

/// One Trial's parameter assignments, `(name, value)` in the Experiment's parameter order.
pub type Assignment = Vec<(String, String)>;

/// What an algorithm service is given about the Experiment (`ConvertExperiment`).
#[derive(Debug, Clone)]
pub struct Search {
    /// `spec.algorithm.algorithmName`.
    pub algorithm: String,
    /// `spec.algorithm.algorithmSettings` as (name, value).
    pub settings: Vec<(String, String)>,
    /// `spec.parameters`.
    pub parameters: Vec<Parameter>,
    /// `spec.maxTrialCount` (0 when unset, as the gRPC message carries it).
    pub max_trial_count: i64,
}

/// Whether the emulator runs algorithm `name` (others would need an algorithm image).
pub fn is_supported(name: &str) -> bool {
    matches!(name, "grid" | "random")
}

/// The service's `ValidateAlgorithmSettings`: the message an `INVALID_ARGUMENT` carries.
pub fn validate(search: &Search) -> Result<(), String> {
    match search.algorithm.as_str() {
        "grid" => validate_grid(search),
        "random" => validate_random(&search.settings),
        other => Err(format!("unknown algorithm name {other}")),
    }
}

/// hyperopt `_validate_random_setting`: only `random_state`, an integer ≥ 0.
fn validate_random(settings: &[(String, String)]) -> Result<(), String> {
    for (name, value) in settings {
        if name != "random_state" {
            return Err(format!("unknown setting {name} for algorithm random"));
        }
        match py::int(value) {
            Ok(v) if v >= 0 => {}
            Ok(_) => return Err("random_state should be great or equal than zero".into()),
            Err(e) => return Err(format!("failed to validate {name}({value}): {e}")),
        }
    }
    Ok(())
}

/// optuna `_validate_grid_setting`: only `random_state` (≥ 0, else an empty message), and a
/// grid with at least maxTrialCount points.
fn validate_grid(search: &Search) -> Result<(), String> {
    for (name, value) in &search.settings {
        if name != "random_state" {
            return Err(format!("unknown setting {name} for algorithm grid"));
        }
        match py::int(value) {
            Ok(v) if v >= 0 => {}
            Ok(_) => return Err(String::new()),
            Err(e) => return Err(format!("failed to validate {name}({value}): {e}")),
        }
    }
    let grid = Grid::new(&search.parameters).map_err(|e| {
        format!(
            "failed to validate parameters({}): {e}",
            py::object_list(search.parameters.len())
        )
    })?;
    if search.max_trial_count > 0 && search.max_trial_count as u64 > grid.size {
        return Err(format!(
            "Max Trial Count: {} > all possible search combinations: {}",
            search.max_trial_count, grid.size
        ));
    }
    Ok(())
}

/// The `random_state` setting, if it is a non-negative integer.
pub fn seed_setting(settings: &[(String, String)]) -> Option<u64> {
    settings
        .iter()
        .find(|(n, _)| n == "random_state")
        .and_then(|(_, v)| py::int(v).ok())
        .and_then(|v| u64::try_from(v).ok())
}

/// One grid axis: the values `convert_to_combinations` lists for a parameter, computed by
/// index rather than stored.
#[derive(Debug, Clone)]
enum Axis {
    /// `range(int(min), int(max) + 1, int(step))`.
    Range { start: i128, step: i128, len: u64 },
    /// `np.arange(min, max + step, step)` less a last value above max: element 0 is `start`,
    /// 1 is `start + step`, i ≥ 2 is `start + i * delta` with `delta = (start + step) - start`
    /// (NumPy's `DOUBLE_fill`).
    Arange {
        start: f64,
        second: f64,
        delta: f64,
        len: u64,
    },
    /// `feasibleSpace.list`.
    List(Vec<String>),
}

impl Axis {
    /// The axis of parameter `p`, or None when the grid leaves it out (unknown type); the
    /// error is the Python exception's text.
    fn of(p: &Parameter) -> Result<Option<Axis>, String> {
        match p.kind {
            ParameterType::Int => {
                let step = if p.step.is_empty() { "1" } else { &p.step };
                let (start, stop, step) = (py::int(&p.min)?, py::int(&p.max)?, py::int(step)?);
                if step == 0 {
                    return Err("range() arg 3 must not be zero".into());
                }
                let (start, stop, step) = (start as i128, stop as i128 + 1, step as i128);
                let len = match step {
                    s if s > 0 && start < stop => (stop - start - 1) / s + 1,
                    s if s < 0 && start > stop => (start - stop - 1) / -s + 1,
                    _ => 0,
                };
                let len = u64::try_from(len).unwrap_or(u64::MAX);
                Ok(Some(Axis::Range { start, step, len }))
            }
            ParameterType::Double => {
                if p.step.is_empty() {
                    return Err(format!(
                        "Param {} step is nil; For discrete search space, all parameters must include step",
                        p.name
                    ));
                }
                let (min, max, step) =
                    (py::float(&p.min)?, py::float(&p.max)?, py::float(&p.step)?);
                Axis::arange(min, max, step).map(Some)
            }
            ParameterType::Categorical | ParameterType::Discrete => {
                Ok(Some(Axis::List(p.list.clone())))
            }
            ParameterType::Unknown => Ok(None),
        }
    }

    /// `np.arange(min, max + step, step)`, dropping the last value when it exceeds max.
    fn arange(min: f64, max: f64, step: f64) -> Result<Axis, String> {
        if step == 0.0 {
            return Err("division by zero".into());
        }
        let length = ((max + step - min) / step).ceil();
        if length.is_nan() {
            return Err("arange: cannot compute length".into());
        }
        let len = if length <= 0.0 { 0 } else { length as u64 };
        let second = min + step;
        let mut axis = Axis::Arange {
            start: min,
            second,
            delta: second - min,
            len,
        };
        if len == 0 {
            return Err("index -1 is out of bounds for axis 0 with size 0".into());
        }
        if axis.float(len - 1) > max
            && let Axis::Arange { len, .. } = &mut axis
        {
            *len -= 1;
        }
        Ok(axis)
    }

    fn float(&self, i: u64) -> f64 {
        match self {
            Axis::Arange {
                start,
                second,
                delta,
                ..
            } => match i {
                0 => *start,
                1 => *second,
                _ => start + i as f64 * delta,
            },
            _ => f64::NAN,
        }
    }

    fn len(&self) -> u64 {
        match self {
            Axis::Range { len, .. } | Axis::Arange { len, .. } => *len,
            Axis::List(l) => l.len() as u64,
        }
    }

    /// Value `i` as Python's `str()` renders it.
    fn value(&self, i: u64) -> String {
        match self {
            Axis::Range { start, step, .. } => (start + i as i128 * step).to_string(),
            Axis::Arange { .. } => py::float_str(self.float(i)),
            Axis::List(l) => usize::try_from(i)
                .ok()
                .and_then(|i| l.get(i))
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// The index of the value rendered as `text`, if the axis has it.
    fn index_of(&self, text: &str) -> Option<u64> {
        match self {
            Axis::List(l) => l.iter().position(|v| v == text).map(|i| i as u64),
            Axis::Range { start, step, len } => {
                let v = i128::from(py::int(text).ok()?);
                let off = v - start;
                (off % step == 0 && off / step >= 0)
                    .then(|| u64::try_from(off / step).ok())
                    .flatten()
                    .filter(|i| i < len)
            }
            Axis::Arange {
                start, delta, len, ..
            } => {
                let v = py::float(text).ok()?;
                let guess = ((v - start) / delta).round().max(0.0) as u64;
                (guess.saturating_sub(1)..=guess + 1).find(|&i| i < *len && self.value(i) == text)
            }
        }
    }
}

/// Optuna's `GridSampler` over `convert_to_combinations`: axes in parameter-name order
/// (`sorted(search_space.items())`), grid ids in `itertools.product` order.
#[derive(Debug, Clone)]
struct Grid {
    /// (parameter name, axis), sorted by name.
    axes: Vec<(String, Axis)>,
    /// The parameters the ask assigns, in the Experiment's order, as indices into `axes`.
    /// Optuna's fixed search space leaves out int/double parameters with a normal or
    /// log-normal distribution (`_get_optuna_search_space`), so their assignment is missing.
    order: Vec<usize>,
    /// Number of grid points (saturating).
    size: u64,
    /// Grid ids handed out so far, in order (Optuna's RUNNING or finished trials).
    asked: Vec<u64>,
    asked_set: HashSet<u64>,
}

impl Grid {
    fn new(params: &[Parameter]) -> Result<Self, String> {
        let mut axes = Vec::new();
        for p in params {
            if let Some(axis) = Axis::of(p)? {
                axes.push((p.name.clone(), axis));
            }
        }
        axes.sort_by(|a, b| a.0.cmp(&b.0));
        let size = axes
            .iter()
            .fold(1u64, |n, (_, a)| n.saturating_mul(a.len()));
        let order = params
            .iter()
            .filter(|p| {
                let numeric = matches!(p.kind, ParameterType::Int | ParameterType::Double);
                !(numeric && matches!(p.distribution(), "normal" | "logNormal"))
            })
            .filter_map(|p| axes.iter().position(|(n, _)| *n == p.name))
            .collect();
        Ok(Self {
            axes,
            order,
            size,
            asked: Vec::new(),
            asked_set: HashSet::new(),
        })
    }

    /// The axis indices of grid point `id` (the last axis varies fastest).
    fn decode(&self, mut id: u64) -> Vec<u64> {
        let mut idx = vec![0; self.axes.len()];
        for (k, (_, axis)) in self.axes.iter().enumerate().rev() {
            let n = axis.len().max(1);
            idx[k] = id % n;
            id /= n;
        }
        idx
    }

    fn assignment(&self, id: u64) -> Assignment {
        let idx = self.decode(id);
        self.order
            .iter()
            .map(|&k| (self.axes[k].0.clone(), self.axes[k].1.value(idx[k])))
            .collect()
    }

    /// The grid id of an assignment, if every axis has its value.
    fn id_of(&self, assignment: &Assignment) -> Option<u64> {
        let mut id = 0u64;
        for (name, axis) in &self.axes {
            let text = assignment.iter().find(|(n, _)| n == name).map(|(_, v)| v)?;
            id = id
                .checked_mul(axis.len())?
                .checked_add(axis.index_of(text)?)?;
        }
        Some(id)
    }

    /// A grid id drawn uniformly among those `keep` accepts, if any.
    fn draw(&self, rng: &mut StdRng, keep: impl Fn(u64) -> bool) -> Option<u64> {
        if self.size <= ENUMERATE_LIMIT {
            let ids: Vec<u64> = (0..self.size).filter(|&i| keep(i)).collect();
            return (!ids.is_empty()).then(|| ids[rng.random_range(0..ids.len())]);
        }
        (0..10_000)
            .map(|_| rng.random_range(0..self.size))
            .find(|&i| keep(i))
    }

    /// `infer_relative_search_space`: a random unvisited point; once every point was handed
    /// out, one not yet finished; once all finished, any (Optuna re-evaluates then).
    fn ask(&mut self, rng: &mut StdRng, finished: &HashSet<u64>, defects: &Tuning) -> u64 {
        let picked = self
            .draw(rng, |i| !self.asked_set.contains(&i))
            .or_else(|| self.draw(rng, |i| !finished.contains(&i)))
            .or_else(|| self.draw(rng, |_| true))
            .unwrap_or(0);
        let id = defects.grid_point(picked, &self.asked);
        self.mark(id);
        id
    }

    fn mark(&mut self, id: u64) {
        self.asked.push(id);
        self.asked_set.insert(id);
    }
}

/// A hyperopt sampling node (`create_hyperopt_domain`).
#[derive(Debug, Clone)]
enum Node {
    Uniform { low: f64, high: f64 },
    QUniform { low: f64, high: f64, q: f64 },
    LogUniform { low: f64, high: f64 },
    QLogUniform { low: f64, high: f64, q: f64 },
    Normal { mu: f64, sigma: f64 },
    QNormal { mu: f64, sigma: f64, q: f64 },
    LogNormal { mu: f64, sigma: f64 },
    QLogNormal { mu: f64, sigma: f64, q: f64 },
    Choice(Vec<String>),
}

/// One parameter of the random search: its node and how `convert` renders the draw.
#[derive(Debug, Clone)]
struct Draw {
    name: String,
    node: Node,
    /// `int(value)` (an int parameter) rather than `str(value)`.
    int: bool,
}

/// hyperopt's `validate_distribution_range`: a truthy low and high need low < high.
fn check_range(low: f64, high: f64) -> Result<(), String> {
    if low != 0.0 && high != 0.0 && low.partial_cmp(&high) != Some(std::cmp::Ordering::Less) {
        return Err(format!(
            "low should be less than high: {} is not smaller than {}",
            py::float_str(low),
            py::float_str(high)
        ));
    }
    Ok(())
}

impl Draw {
    /// The node `create_hyperopt_domain` builds for `p` (None for an unknown type); the error
    /// is the Python exception's text.
    fn of(p: &Parameter, defects: &Tuning) -> Result<Option<Draw>, String> {
        let int = match p.kind {
            ParameterType::Int => true,
            ParameterType::Double => false,
            ParameterType::Categorical | ParameterType::Discrete => {
                let node = Node::Choice(p.list.clone());
                return Ok(Some(Draw {
                    name: p.name.clone(),
                    node,
                    int: false,
                }));
            }
            ParameterType::Unknown => return Ok(None),
        };
        // An int parameter's step defaults to 1 (`convert_parameter`), so it is quantised.
        let step = match p.step.as_str() {
            "" if int => Some(1.0),
            "" => None,
            s => Some(py::float(s)?),
        };
        let (min, max) = (py::float(&p.min)?, py::float(&p.max)?);
        let node = match (p.distribution(), step) {
            ("", q) => {
                let (low, high) = if int {
                    (min, max)
                } else {
                    defects.random_bounds(min, max)
                };
                check_range(low, high)?;
                match q {
                    Some(q) => Node::QUniform { low, high, q },
                    None => Node::Uniform { low, high },
                }
            }
            ("logUniform", q) => {
                let (low, high) = (py::log(min)?, py::log(max)?);
                check_range(low, high)?;
                match q {
                    Some(q) => Node::QLogUniform { low, high, q },
                    None => Node::LogUniform { low, high },
                }
            }
            ("normal", q) => {
                let (mu, sigma) = ((min + max) / 2.0, (max - min) / 6.0);
                match q {
                    Some(q) => Node::QNormal { mu, sigma, q },
                    None => Node::Normal { mu, sigma },
                }
            }
            (_, q) => {
                let (lmin, lmax) = (py::log(min)?, py::log(max)?);
                let (mu, sigma) = ((lmin + lmax) / 2.0, (lmax - lmin) / 6.0);
                match q {
                    Some(q) => Node::QLogNormal { mu, sigma, q },
                    None => Node::LogNormal { mu, sigma },
                }
            }
        };
        Ok(Some(Draw {
            name: p.name.clone(),
            node,
            int,
        }))
    }

    /// One draw, rendered as `BaseHyperoptService.convert` and `str()` render it.
    fn sample(&self, rng: &mut StdRng) -> Result<String, String> {
        let uniform =
            |rng: &mut StdRng, low: f64, high: f64| low + (high - low) * rng.random::<f64>();
        let normal = |rng: &mut StdRng, mu: f64, sigma: f64| {
            // Box-Muller: u1 in (0, 1] keeps the logarithm finite.
            let u1 = 1.0 - rng.random::<f64>();
            let u2 = rng.random::<f64>();
            mu + sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        };
        let quantise = |v: f64, q: f64| (v / q).round_ties_even() * q;
        let v = match &self.node {
            Node::Choice(list) => {
                if list.is_empty() {
                    return Err("high <= 0".into());
                }
                return Ok(list[rng.random_range(0..list.len())].clone());
            }
            Node::Uniform { low, high } => uniform(rng, *low, *high),
            Node::QUniform { low, high, q } => quantise(uniform(rng, *low, *high), *q),
            Node::LogUniform { low, high } => uniform(rng, *low, *high).exp(),
            Node::QLogUniform { low, high, q } => quantise(uniform(rng, *low, *high).exp(), *q),
            Node::Normal { mu, sigma } => normal(rng, *mu, *sigma),
            Node::QNormal { mu, sigma, q } => quantise(normal(rng, *mu, *sigma), *q),
            Node::LogNormal { mu, sigma } => normal(rng, *mu, *sigma).exp(),
            Node::QLogNormal { mu, sigma, q } => quantise(normal(rng, *mu, *sigma).exp(), *q),
        };
        if self.int {
            py::int_of_float(v)
        } else {
            Ok(py::float_str(v))
        }
    }
}

/// The state of one Suggestion's algorithm service: what a running Optuna study or hyperopt
/// `FMinIter` remembers between `GetSuggestions` calls.
#[derive(Debug)]
pub struct Sampler {
    rng: StdRng,
    kind: SamplerKind,
    defects: Tuning,
}

#[derive(Debug)]
enum SamplerKind {
    Grid(Grid),
    Random(Vec<Draw>),
}

impl Sampler {
    /// The service for `search` as its first `GetSuggestions` creates it, seeded with
    /// `random_state` when set, else `seed`. The error is the Python exception's text.
    pub fn new(search: &Search, seed: u64, defects: Tuning) -> Result<Self, String> {
        let seed = seed_setting(&search.settings).unwrap_or(seed);
        let kind = match search.algorithm.as_str() {
            "grid" => SamplerKind::Grid(Grid::new(&search.parameters)?),
            "random" => {
                let mut draws = Vec::new();
                for p in &search.parameters {
                    if let Some(d) = Draw::of(p, &defects)? {
                        draws.push(d);
                    }
                }
                SamplerKind::Random(draws)
            }
            other => return Err(format!("'{other}'")),
        };
        Ok(Self {
            rng: StdRng::seed_from_u64(seed),
            kind,
            defects,
        })
    }

    /// Remembers assignments handed out before this sampler existed (the Suggestion's
    /// `status.suggestions`), so a grid does not hand their points out again.
    pub fn replay(&mut self, handed_out: &[Assignment]) {
        if let SamplerKind::Grid(grid) = &mut self.kind {
            for a in handed_out {
                if let Some(id) = grid.id_of(a) {
                    grid.mark(id);
                }
            }
        }
    }

    /// `GetSuggestions` for `n` Trials; `finished` are the assignments of the Trials the
    /// service is told about (Succeeded or EarlyStopped with the objective observed).
    pub fn suggest(
        &mut self,
        n: usize,
        finished: &[Assignment],
    ) -> Result<Vec<Assignment>, String> {
        let mut out = Vec::with_capacity(n);
        match &mut self.kind {
            SamplerKind::Grid(grid) => {
                if grid.size == 0 && n > 0 {
                    // NumPy's `choice` over an empty grid.
                    return Err("'a' cannot be empty unless no samples are taken".into());
                }
                let done: HashSet<u64> = finished.iter().filter_map(|a| grid.id_of(a)).collect();
                for _ in 0..n {
                    let id = grid.ask(&mut self.rng, &done, &self.defects);
                    out.push(grid.assignment(id));
                }
            }
            SamplerKind::Random(draws) => {
                for _ in 0..n {
                    let mut a = Assignment::new();
                    for d in draws.iter() {
                        a.push((d.name.clone(), d.sample(&mut self.rng)?));
                    }
                    out.push(a);
                }
            }
        }
        Ok(out)
    }
}

/// Python's number parsing and rendering, as the services' `int()`, `float()` and `str()`.
mod py {
    /// `int(s)` of a string: surrounding whitespace, a sign, digits with single underscores.
    pub fn int(s: &str) -> Result<i64, String> {
        let err = || format!("invalid literal for int() with base 10: {}", quoted(s));
        let t = s.trim();
        let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
        let well_formed = !digits.is_empty()
            && !digits.starts_with('_')
            && !digits.ends_with('_')
            && !digits.contains("__")
            && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
        if !well_formed {
            return Err(err());
        }
        t.replace('_', "").parse().map_err(|_| err())
    }

    /// `float(s)` of a string.
    pub fn float(s: &str) -> Result<f64, String> {
        let t = s.trim();
        let underscores_ok = !t.contains("__")
            && t.char_indices().filter(|(_, c)| *c == '_').all(|(i, _)| {
                let b = t.as_bytes();
                i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit)
            });
        match underscores_ok.then(|| t.replace('_', "").parse::<f64>()) {
            Some(Ok(v)) => Ok(v),
            _ => Err(format!("could not convert string to float: {}", quoted(s))),
        }
    }

    /// `math.log(x)`.
    pub fn log(x: f64) -> Result<f64, String> {
        if x > 0.0 {
            Ok(x.ln())
        } else {
            Err("math domain error".into())
        }
    }

    /// `str(int(x))` of a float (truncation toward zero).
    pub fn int_of_float(x: f64) -> Result<String, String> {
        if x.is_nan() {
            return Err("cannot convert float NaN to integer".into());
        }
        if x.is_infinite() {
            return Err("cannot convert float infinity to integer".into());
        }
        let t = x.trunc();
        Ok(if t == 0.0 { "0".into() } else { format!("{t}") })
    }

    /// Python's `repr(str)` of a string, as its error messages quote values.
    fn quoted(s: &str) -> String {
        if s.contains('\'') && !s.contains('"') {
            format!("\"{s}\"")
        } else {
            format!("'{}'", s.replace('\'', "\\'"))
        }
    }

    /// How `str()` of a list of `HyperParameter` objects reads (they have no `__repr__`);
    /// the addresses are made up, as any process's would be its own.
    pub fn object_list(n: usize) -> String {
        let objects: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "<pkg.suggestion.v1beta1.internal.search_space.HyperParameter object at 0x7f3a5c{:06x}>",
                    0x10_0000 + 0x30 * i
                )
            })
            .collect();
        format!("[{}]", objects.join(", "))
    }

    /// `str(x)` (= `repr(x)`) of a float: the shortest digits that round-trip, positional
    /// when the decimal exponent is in [-4, 16), else scientific with a two-digit exponent.
    pub fn float_str(x: f64) -> String {
        if x.is_nan() {
            return "nan".into();
        }
        if x.is_infinite() {
            return if x > 0.0 { "inf" } else { "-inf" }.into();
        }
        // `{:e}` gives the shortest round-trip digits: "-1.25e-5".
        let sci = format!("{x:e}");
        let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let (sign, mantissa) = match mantissa.strip_prefix('-') {
            Some(m) => ("-", m),
            None => ("", mantissa),
        };
        let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        let decpt = exp + 1;
        let n = digits.len() as i32;
        let body = if (-3..=16).contains(&decpt) {
            if decpt <= 0 {
                format!("0.{}{digits}", "0".repeat((-decpt) as usize))
            } else if decpt >= n {
                format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
            } else {
                let (a, b) = digits.split_at(decpt as usize);
                format!("{a}.{b}")
            }
        } else {
            let (first, rest) = digits.split_at(1);
            let frac = if rest.is_empty() {
                String::new()
            } else {
                format!(".{rest}")
            };
            let e = decpt - 1;
            format!(
                "{first}{frac}e{}{:02}",
                if e < 0 { '-' } else { '+' },
                e.abs()
            )
        };
        format!("{sign}{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(v: Value) -> Parameter {
        Parameter::from_spec(&v)
    }

    fn double(name: &str, min: &str, max: &str, step: &str) -> Parameter {
        param(json!({"name": name, "parameterType": "double",
                     "feasibleSpace": {"min": min, "max": max, "step": step}}))
    }

    fn int(name: &str, min: &str, max: &str, step: &str) -> Parameter {
        param(json!({"name": name, "parameterType": "int",
                     "feasibleSpace": {"min": min, "max": max, "step": step}}))
    }

    fn search(algorithm: &str, parameters: Vec<Parameter>, max: i64) -> Search {
        Search {
            algorithm: algorithm.into(),
            settings: Vec::new(),
            parameters,
            max_trial_count: max,
        }
    }

    fn values(axis: &Axis) -> Vec<String> {
        (0..axis.len()).map(|i| axis.value(i)).collect()
    }

    #[test]
    fn floats_render_as_python_does() {
        let cases = [
            (0.1, "0.1"),
            (0.15000000000000002, "0.15000000000000002"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (1.5e16, "1.5e+16"),
            (3.0, "3.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (-2.5e-7, "-2.5e-07"),
            (123.456, "123.456"),
            (1e100, "1e+100"),
        ];
        for (x, want) in cases {
            assert_eq!(py::float_str(x), want, "{x:e}");
        }
        assert_eq!(py::int_of_float(-0.7).as_deref(), Ok("0"));
        assert_eq!(py::int_of_float(7.9).as_deref(), Ok("7"));
        assert!(py::int_of_float(f64::NAN).is_err());
    }

    #[test]
    fn python_parsing_and_its_errors() {
        assert_eq!(py::int(" 12 "), Ok(12));
        assert_eq!(py::int("-1_000"), Ok(-1000));
        assert_eq!(
            py::int("0.5"),
            Err("invalid literal for int() with base 10: '0.5'".into())
        );
        assert_eq!(py::float("1e-2"), Ok(0.01));
        assert_eq!(
            py::float("abc"),
            Err("could not convert string to float: 'abc'".into())
        );
    }

    #[test]
    fn int_axes_are_python_ranges() {
        let a = Axis::of(&int("n", "1", "5", "")).unwrap().unwrap();
        assert_eq!(values(&a), ["1", "2", "3", "4", "5"]);
        let a = Axis::of(&int("n", "1", "6", "2")).unwrap().unwrap();
        assert_eq!(values(&a), ["1", "3", "5"]);
        let a = Axis::of(&int("n", "5", "1", "")).unwrap().unwrap();
        assert_eq!(a.len(), 0);
        assert_eq!(
            Axis::of(&int("n", "1", "5", "0")).unwrap_err(),
            "range() arg 3 must not be zero"
        );
    }

    #[test]
    fn double_axes_follow_numpy_arange() {
        // np.arange(0.01, 0.06, 0.01) has six values, the last above max, which goes.
        let a = Axis::of(&double("lr", "0.01", "0.05", "0.01"))
            .unwrap()
            .unwrap();
        assert_eq!(a.len(), 5);
        assert_eq!(a.value(0), "0.01");
        assert_eq!(a.value(1), "0.02");
        // Element i ≥ 2 is start + i * delta: the artefacts numpy shows.
        assert_eq!(a.value(2), py::float_str(0.01 + 2.0 * (0.02 - 0.01)));
        let a = Axis::of(&double("m", "0.5", "0.9", "0.1"))
            .unwrap()
            .unwrap();
        assert_eq!(
            values(&a),
            [
                "0.5",
                "0.6",
                "0.7",
                "0.7999999999999999",
                "0.8999999999999999"
            ]
        );
        let a = Axis::of(&double("lr", "0.01", "0.05", "0.005"))
            .unwrap()
            .unwrap();
        assert_eq!(a.len(), 9);
        assert_eq!(a.value(2), "0.019999999999999997");
        assert_eq!(a.value(8), "0.049999999999999996");
        let a = Axis::of(&double("x", "0.1", "0.2", "0.05"))
            .unwrap()
            .unwrap();
        assert_eq!(values(&a), ["0.1", "0.15000000000000002"]);
        let a = Axis::of(&double("x", "0", "1", "0.25")).unwrap().unwrap();
        assert_eq!(values(&a), ["0.0", "0.25", "0.5", "0.75", "1.0"]);
        assert!(
            Axis::of(&double("x", "0", "1", ""))
                .unwrap_err()
                .starts_with("Param x step is nil")
        );
    }

    #[test]
    fn grid_validation_messages() {
        let s = search(
            "grid",
            vec![int("a", "1", "3", ""), double("b", "0", "1", "0.5")],
            9,
        );
        assert_eq!(validate(&s), Ok(()));
        let s = search("grid", s.parameters, 10);
        assert_eq!(
            validate(&s),
            Err("Max Trial Count: 10 > all possible search combinations: 9".into())
        );
        let s = search("grid", vec![double("lr", "0.1", "0.2", "")], 1);
        let e = validate(&s).unwrap_err();
        assert!(
            e.starts_with("failed to validate parameters([<pkg.suggestion"),
            "{e}"
        );
        assert!(e.ends_with("]): Param lr step is nil; For discrete search space, all parameters must include step"), "{e}");
        let mut s = search("grid", vec![int("a", "1", "3", "")], 1);
        s.settings = vec![("seed".into(), "1".into())];
        assert_eq!(
            validate(&s),
            Err("unknown setting seed for algorithm grid".into())
        );
        s.settings = vec![("random_state".into(), "-1".into())];
        assert_eq!(validate(&s), Err(String::new()));
        // No maxTrialCount: nothing to compare.
        assert_eq!(
            validate(&search("grid", vec![int("a", "1", "3", "")], 0)),
            Ok(())
        );
    }

    #[test]
    fn random_validation_messages() {
        let mut s = search("random", vec![], 0);
        s.settings = vec![("random_state".into(), "x".into())];
        assert_eq!(
            validate(&s),
            Err(
                "failed to validate random_state(x): invalid literal for int() with base 10: 'x'"
                    .into()
            )
        );
        s.settings = vec![("gamma".into(), "1".into())];
        assert_eq!(
            validate(&s),
            Err("unknown setting gamma for algorithm random".into())
        );
    }

    fn grid_run(params: Vec<Parameter>, seed: u64, defects: Tuning) -> Vec<Assignment> {
        let s = search("grid", params, 0);
        let mut sampler = Sampler::new(&s, seed, defects).unwrap();
        let first = sampler.suggest(2, &[]).unwrap();
        let rest = sampler.suggest(4, &first).unwrap();
        first.into_iter().chain(rest).collect()
    }

    #[test]
    fn the_grid_hands_out_every_point_once_in_a_seeded_random_order() {
        let params = vec![
            param(json!({"name": "opt", "parameterType": "categorical",
                         "feasibleSpace": {"list": ["sgd", "adam"]}})),
            int("layers", "1", "3", ""),
        ];
        let run = grid_run(params.clone(), 7, Tuning::default());
        assert_eq!(run.len(), 6);
        let distinct: HashSet<&Assignment> = run.iter().collect();
        assert_eq!(distinct.len(), 6);
        // Assignments follow the Experiment's parameter order.
        assert!(run.iter().all(|a| a[0].0 == "opt" && a[1].0 == "layers"));
        assert_eq!(run, grid_run(params.clone(), 7, Tuning::default()));
        let orders: HashSet<Vec<Assignment>> = (0..8)
            .map(|seed| grid_run(params.clone(), seed, Tuning::default()))
            .collect();
        assert!(orders.len() > 1, "the order depends on the seed");
        let mut sorted = run.clone();
        sorted.sort();
        assert!((0..8).any(|seed| grid_run(params.clone(), seed, Tuning::default()) != sorted));
    }

    #[test]
    fn a_replayed_grid_does_not_repeat_points_and_exhaustion_re_evaluates() {
        let params = vec![int("a", "1", "4", "")];
        let s = search("grid", params, 0);
        let mut one = Sampler::new(&s, 1, Tuning::default()).unwrap();
        let first = one.suggest(2, &[]).unwrap();
        let mut two = Sampler::new(&s, 2, Tuning::default()).unwrap();
        two.replay(&first);
        let rest = two.suggest(2, &[]).unwrap();
        let all: HashSet<&Assignment> = first.iter().chain(&rest).collect();
        assert_eq!(all.len(), 4);
        // Past the grid's size a point that has not finished is evaluated again.
        let finished: Vec<Assignment> = first.iter().chain(&rest[..1]).cloned().collect();
        let again = two.suggest(1, &finished).unwrap();
        assert_eq!(again[0], rest[1]);
    }

    #[test]
    fn the_repeating_grid_defect_hands_out_a_point_twice() {
        let params = vec![int("a", "1", "4", "")];
        let broken = Tuning::new(&[crate::defects::Defect::TuningGridRepeatsPoint]);
        let s = search("grid", params, 0);
        let mut sampler = Sampler::new(&s, 3, broken).unwrap();
        let run = sampler.suggest(4, &[]).unwrap();
        assert_eq!(run[0], run[1]);
        let distinct: HashSet<&Assignment> = run.iter().collect();
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn normal_parameters_are_left_out_of_the_grid_assignment() {
        let mut p = double("x", "0", "1", "0.5");
        p.distribution = "normal".into();
        let s = search("grid", vec![p, int("a", "1", "2", "")], 0);
        let mut sampler = Sampler::new(&s, 0, Tuning::default()).unwrap();
        let a = sampler.suggest(1, &[]).unwrap();
        assert_eq!(a[0].len(), 1);
        assert_eq!(a[0][0].0, "a");
    }

    fn random_values(p: Parameter, defects: Tuning, n: usize) -> Vec<String> {
        let s = search("random", vec![p], 0);
        let mut sampler = Sampler::new(&s, 11, defects).unwrap();
        sampler
            .suggest(n, &[])
            .unwrap()
            .into_iter()
            .map(|a| a[0].1.clone())
            .collect()
    }

    #[test]
    fn random_search_stays_in_the_feasible_space() {
        for v in random_values(double("lr", "0.01", "0.05", ""), Tuning::default(), 200) {
            let x: f64 = v.parse().unwrap();
            assert!((0.01..=0.05).contains(&x), "{v}");
        }
        let ints = random_values(int("n", "2", "5", ""), Tuning::default(), 200);
        let seen: HashSet<&str> = ints.iter().map(String::as_str).collect();
        assert_eq!(seen, HashSet::from(["2", "3", "4", "5"]));
        for v in random_values(double("q", "0", "1", "0.25"), Tuning::default(), 100) {
            assert!(
                ["0.0", "0.25", "0.5", "0.75", "1.0"].contains(&v.as_str()),
                "{v}"
            );
        }
        let cat = param(json!({"name": "c", "parameterType": "categorical",
                               "feasibleSpace": {"list": ["a", "b"]}}));
        let seen: HashSet<String> = random_values(cat, Tuning::default(), 50)
            .into_iter()
            .collect();
        assert_eq!(seen, HashSet::from(["a".to_string(), "b".to_string()]));
    }

    #[test]
    fn the_out_of_range_defect_draws_past_max() {
        let broken = Tuning::new(&[crate::defects::Defect::TuningRandomOutOfRange]);
        let xs: Vec<f64> = random_values(double("lr", "0", "1", ""), broken, 200)
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        // Every draw lies in [max, 2 max - min] = [1, 2], above the feasible space.
        assert!(xs.iter().any(|&x| x > 1.0));
        assert!(xs.iter().all(|&x| (1.0..=2.0).contains(&x)));
    }

    #[test]
    fn random_domain_errors_are_pythons() {
        let s = search("random", vec![double("lr", "1", "1", "")], 0);
        assert_eq!(
            Sampler::new(&s, 0, Tuning::default()).unwrap_err(),
            "low should be less than high: 1.0 is not smaller than 1.0"
        );
        let s = search("random", vec![double("lr", "x", "1", "")], 0);
        assert_eq!(
            Sampler::new(&s, 0, Tuning::default()).unwrap_err(),
            "could not convert string to float: 'x'"
        );
    }
}
