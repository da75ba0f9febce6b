//! Option values → core parameters (numbers checked to be whole and in range, defaults
//! applied). Arguments that carry data (vectors, ids, metadata, filters) are read by `input`.

use ciphervec_core::{Error, Include, Result};
use napi::bindgen_prelude::Either;

use crate::types::{AutoTrainOptions, IncludeField, TrainOptions};

/// A JS number that must be a whole number in `min..=max` (napi's u32 conversion would
/// silently wrap -1 or truncate 1.5).
pub fn whole(x: Option<f64>, what: &str, default: usize, min: usize, max: usize) -> Result<usize> {
    let Some(x) = x else { return Ok(default) };
    if x.fract() != 0.0 || x < min as f64 || x > max as f64 {
        return Err(Error::InvalidArgument(format!("{what} must be a whole number between {min} and {max}, got {x}")));
    }
    Ok(x as usize)
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

pub fn n_probes(x: Option<f64>) -> Result<Option<usize>> {
    x.map(|_| whole(x, "nProbes", 0, 1, u32::MAX as usize)).transpose()
}

/// `train` options → core parameters (defaults documented on `TrainOptions`).
pub fn train_params(o: &TrainOptions) -> Result<ciphervec_core::TrainParams> {
    use ciphervec_core::index::training::{MAX_ITERS, MAX_N_LISTS};
    let d = ciphervec_core::TrainParams::default();
    let tolerance = o.tolerance.unwrap_or(d.tolerance);
    if !(tolerance.is_finite() && tolerance >= 0.0) {
        return Err(Error::InvalidArgument(format!("tolerance must be a finite number >= 0, got {tolerance}")));
    }
    Ok(ciphervec_core::TrainParams {
        n_lists: o.n_lists.map(|_| whole(o.n_lists, "nLists", 0, 1, MAX_N_LISTS)).transpose()?,
        batch_size: whole(o.batch_size, "batchSize", d.batch_size, 1, 1 << 24)?,
        max_iters: whole(o.max_iters, "maxIters", d.max_iters, 1, MAX_ITERS)?,
        tolerance,
        max_memory_mb: whole(o.max_memory, "maxMemory", 0, 0, 1 << 30)?,
        seed: whole(o.seed, "seed", d.seed as usize, 0, (1usize << 53) - 1)? as u64,
    })
}

/// The auto-training threshold an `autoTrain` option asks for (`None` = off). Unset options
/// fall back to `CIPHERVEC_AUTO_TRAIN_DISABLED` / `CIPHERVEC_RETRAIN_THRESHOLD`.
pub fn auto_train(option: Option<&Either<bool, AutoTrainOptions>>) -> Result<Option<usize>> {
    use ciphervec_core::index::auto_train::DEFAULT_THRESHOLD;
    let env_threshold = match std::env::var("CIPHERVEC_RETRAIN_THRESHOLD") {
        Ok(v) => v.trim().parse::<usize>().ok().filter(|&t| t > 0).ok_or_else(|| {
            Error::InvalidArgument(format!("CIPHERVEC_RETRAIN_THRESHOLD must be a whole number >= 1, got '{v}'"))
        })?,
        Err(_) => DEFAULT_THRESHOLD,
    };
    let env_disabled = std::env::var("CIPHERVEC_AUTO_TRAIN_DISABLED")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false);
    match option {
        None => Ok((!env_disabled).then_some(env_threshold)),
        Some(Either::A(false)) => Ok(None),
        Some(Either::A(true)) => Ok(Some(env_threshold)),
        Some(Either::B(o)) => Ok(Some(whole(o.threshold, "autoTrain.threshold", env_threshold, 1, usize::MAX >> 11)?)),
    }
}
