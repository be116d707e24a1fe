//! CPU lists in the kernel's `cpulist` format (`0,2-3`), as `--cpus` and
//! the file's `cpus` take them and as errors and `--print-config` write
//! them back.

/// Highest CPU number a CPU list may name. Why: the affinity mask that
/// `sched_setaffinity` takes (glibc `cpu_set_t`, `CPU_SETSIZE`) holds 1024
/// CPUs; the bound also keeps `0-4000000000` from allocating a huge list.
pub const CPU_ID_MAX: usize = 1023;

/// Parses a CPU list in the kernel's `cpulist` format (`0,2-3`): numbers
/// and inclusive ranges separated by commas, spaces around them allowed.
/// Duplicates are dropped; the order of first appearance is kept, since
/// shards are pinned in list order.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, CpuListError> {
    if text.trim().is_empty() {
        return Err(CpuListError::Empty);
    }
    let mut cpus = Vec::new();
    let mut seen = [false; CPU_ID_MAX + 1];
    for item in text.split(',').map(str::trim) {
        let (low, high) = match item.split_once('-') {
            Some((low, high)) => (parse_cpu(low.trim(), item)?, parse_cpu(high.trim(), item)?),
            None => {
                let cpu = parse_cpu(item, item)?;
                (cpu, cpu)
            }
        };
        if low > high {
            return Err(CpuListError::Reversed {
                low: high,
                high: low,
            });
        }
        for cpu in low..=high {
            if let Some(seen) = seen.get_mut(cpu).filter(|seen| !**seen) {
                *seen = true;
                cpus.push(cpu);
            }
        }
    }
    Ok(cpus)
}

fn parse_cpu(text: &str, item: &str) -> Result<usize, CpuListError> {
    let not_a_cpu = || CpuListError::NotACpu(item.to_string());
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_cpu());
    }
    match text.parse::<usize>() {
        Ok(cpu) if cpu <= CPU_ID_MAX => Ok(cpu),
        _ => Err(CpuListError::TooHigh(text.to_string())),
    }
}

/// Writes CPUs back as a CPU list, runs of consecutive numbers as ranges:
/// `[0, 1, 2, 5]` → `0-2,5`.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &cpu in cpus {
        match runs.last_mut() {
            Some((_, high)) if high.checked_add(1) == Some(cpu) => *high = cpu,
            _ => runs.push((cpu, cpu)),
        }
    }
    let items: Vec<String> = runs
        .iter()
        .map(|&(low, high)| {
            if low == high {
                low.to_string()
            } else {
                format!("{low}-{high}")
            }
        })
        .collect();
    items.join(",")
}

/// Why a CPU list does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CpuListError {
    #[error("the list is empty; write CPUs like 0,2-3")]
    Empty,
    #[error("{0:?} is not a CPU number or a range like 2-3")]
    NotACpu(String),
    #[error("range {high}-{low} is reversed; write {low}-{high}")]
    Reversed { low: usize, high: usize },
    #[error("CPU {0} is above {CPU_ID_MAX}, the highest a Linux affinity mask holds")]
    TooHigh(String),
}
