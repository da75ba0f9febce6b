//! Option values → core parameters. Only types are converted here: a JS number becomes a
//! whole number (napi's u32 conversion would silently wrap -1 or truncate 1.5), strings
//! become enums; the core checks ranges and applies defaults, so every limit has one home.

use ciphervec_core::{AutoTrain, Error, Include, Metric, Result, TrainAlgorithm, TrainParams};
use napi::bindgen_prelude::Either;

use crate::types::{
    AutoTrainOptions, DistanceMetric, IncludeField, IndexStats, IndexType, ListSizes, MemoryStats, Resident,
    TrainOptions, TrainingState,
};

/// Largest whole number a JS number holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// A JS number that must be a whole number ≥ 0 (its range is the core's to check).
pub fn count(x: Option<f64>, what: &str) -> Result<Option<usize>> {
    let Some(x) = x else { return Ok(None) };
    if x.fract() != 0.0 || !(0.0..=MAX_SAFE).contains(&x) {
        return Err(Error::InvalidArgument(format!("{what} must be a whole number (0 or more), got {x}")));
    }
    Ok(Some(x as usize))
}

pub fn include(fields: Option<&[IncludeField]>, default: Include) -> Include {
    let Some(fields) = fields else { return default };
    let mut inc = Include::default();
    for f in fields {
        match f {
            IncludeField::Distance => inc.distance = true,
            IncludeField::Metadata => inc.metadata = true,
            IncludeField::Contents => inc.contents = true,
            IncludeField::Vector => inc.vector = true,
        }
    }
    inc
}

impl From<DistanceMetric> for Metric {
    fn from(m: DistanceMetric) -> Metric {
        match m {
            DistanceMetric::Euclidean => Metric::Euclidean,
            DistanceMetric::SquaredEuclidean => Metric::SquaredEuclidean,
            DistanceMetric::Cosine => Metric::Cosine,
        }
    }
}

impl From<Metric> for DistanceMetric {
    fn from(m: Metric) -> DistanceMetric {
        match m {
            Metric::Euclidean => DistanceMetric::Euclidean,
            Metric::SquaredEuclidean => DistanceMetric::SquaredEuclidean,
            Metric::Cosine => DistanceMetric::Cosine,
        }
    }
}

/// The `indexType` option with its `pqDim` and `pqBits`: checked here rather than by napi's
/// enum conversion, whose failure is a synchronous `InvalidArg` TypeError instead of a
/// rejection with a code.
pub fn index_type(name: Option<&str>, pq_dim: Option<f64>, pq_bits: Option<f64>) -> Result<ciphervec_core::IndexType> {
    let index_type = match name {
        None => ciphervec_core::IndexType::default(),
        Some("ivfflat") => ciphervec_core::IndexType::IvfFlat,
        Some("ivfsq8") => ciphervec_core::IndexType::IvfSq8,
        Some("ivffp16") => ciphervec_core::IndexType::IvfFp16,
        Some("ivfpq") => {
            if let Some(bits) = pq_bits.filter(|&b| b != 8.0) {
                return Err(Error::InvalidArgument(format!(
                    "pqBits must be 8 (the only code width so far), got {bits}"
                )));
            }
            let sub_vectors = count(pq_dim, "pqDim")?
                .map(|m| u32::try_from(m).map_err(|_| Error::InvalidArgument(format!("pqDim {m} is too large"))))
                .transpose()?;
            return Ok(ciphervec_core::IndexType::IvfPq(ciphervec_core::PqShape { sub_vectors }));
        }
        Some(other) => {
            return Err(Error::InvalidArgument(format!(
                "indexType must be 'ivfflat', 'ivfsq8', 'ivffp16' or 'ivfpq', got '{other}'"
            )))
        }
    };
    if pq_dim.is_some() || pq_bits.is_some() {
        return Err(Error::InvalidArgument(
            "pqDim and pqBits are options of indexType 'ivfpq' only: drop them or choose 'ivfpq'".into(),
        ));
    }
    Ok(index_type)
}

/// The `resident` option, checked as `indexType` is.
pub fn resident(name: Option<&str>) -> Result<ciphervec_core::Resident> {
    Ok(match name {
        None => ciphervec_core::Resident::default(),
        Some("vectors") => ciphervec_core::Resident::Vectors,
        Some("codes") => ciphervec_core::Resident::Codes,
        Some(other) => {
            return Err(Error::InvalidArgument(format!("resident must be 'vectors' or 'codes', got '{other}'")))
        }
    })
}

impl From<ciphervec_core::Resident> for Resident {
    fn from(r: ciphervec_core::Resident) -> Resident {
        match r {
            ciphervec_core::Resident::Vectors => Resident::Vectors,
            ciphervec_core::Resident::Codes => Resident::Codes,
        }
    }
}

impl From<ciphervec_core::IndexType> for IndexType {
    fn from(t: ciphervec_core::IndexType) -> IndexType {
        match t {
            ciphervec_core::IndexType::IvfFlat => IndexType::Ivfflat,
            ciphervec_core::IndexType::IvfSq8 => IndexType::Ivfsq8,
            ciphervec_core::IndexType::IvfFp16 => IndexType::Ivffp16,
            ciphervec_core::IndexType::IvfPq(_) => IndexType::Ivfpq,
        }
    }
}

/// `train` options → core parameters (which the core validates; defaults are its own).
pub fn train_params(o: &TrainOptions) -> Result<TrainParams> {
    let d = TrainParams::default();
    Ok(TrainParams {
        n_lists: count(o.n_lists, "nLists")?,
        algorithm: match o.algorithm.as_deref() {
            None => d.algorithm,
            Some(a) => algorithm(a)?,
        },
        batch_size: count(o.batch_size, "batchSize")?.unwrap_or(d.batch_size),
        max_iters: count(o.max_iters, "maxIters")?.or(d.max_iters),
        tolerance: o.tolerance.unwrap_or(d.tolerance),
        max_memory_mb: count(o.max_memory, "maxMemory")?.unwrap_or(d.max_memory_mb),
        seed: count(o.seed, "seed")?.map_or(d.seed, |s| s as u64),
    })
}

/// A `TrainAlgorithm` string. Taken as a string rather than napi's string enum so that an
/// unknown value rejects with `ERR_INVALID_ARGUMENT` like every other bad option.
fn algorithm(name: &str) -> Result<TrainAlgorithm> {
    match name {
        "minibatch" => Ok(TrainAlgorithm::MiniBatch),
        "lloyd" => Ok(TrainAlgorithm::Lloyd),
        other => Err(Error::InvalidArgument(format!("algorithm must be 'minibatch' or 'lloyd', got '{other}'"))),
    }
}

/// The `autoTrain` option as the core's setting: absent → the environment's default.
pub fn auto_train(option: Option<&Either<bool, AutoTrainOptions>>) -> Result<AutoTrain> {
    Ok(match option {
        None => AutoTrain::FromEnv,
        Some(Either::A(false)) => AutoTrain::Off,
        Some(Either::A(true)) => AutoTrain::On(None),
        Some(Either::B(o)) => AutoTrain::On(count(o.threshold, "autoTrain.threshold")?),
    })
}

/// The core's stats as the JS object (counts fit a u32: an index holds fewer items).
pub fn index_stats(s: ciphervec_core::IndexStats, training_state: TrainingState) -> IndexStats {
    let m = s.memory;
    let other = m.total() - m.vectors - m.codes - m.ids - m.metadata - m.contents - m.metadata_index - m.text_index;
    IndexStats {
        items: s.items as u32,
        dimension: s.dimension.map(|d| d as u32),
        metric: s.metric.into(),
        index_type: s.index_type.into(),
        resident: s.resident.into(),
        training_state,
        n_lists: s.n_lists as u32,
        list_sizes: s.lists.map(|l| ListSizes {
            min: l.min as u32,
            median: l.median as u32,
            max: l.max as u32,
            empty: l.empty as u32,
        }),
        loose_entries: s.loose_entries as u32,
        segments: s.segments as u32,
        memory: MemoryStats {
            vectors_bytes: m.vectors as f64,
            codes_bytes: m.codes as f64,
            ids_bytes: m.ids as f64,
            metadata_bytes: m.metadata as f64,
            contents_bytes: m.contents as f64,
            metadata_index_bytes: m.metadata_index as f64,
            text_index_bytes: m.text_index as f64,
            other_bytes: other as f64,
            total_bytes: m.total() as f64,
        },
    }
}
