//! The verdict as a person reads it, shared by `check` and `run`.

use checker::check::{Counterexample, Report, Verdict};

/// Prints the verdict, then `timing`, then why it is unknown or the
/// counterexample.
pub fn print(report: &Report, timing: &str) {
    let headline = match report.verdict {
        Verdict::Valid => "VALID: the history is linearizable".to_string(),
        Verdict::Invalid => "INVALID: the history is not linearizable".to_string(),
        Verdict::Unknown => format!(
            "UNKNOWN: {}",
            report
                .reason
                .as_deref()
                .unwrap_or("the check did not finish")
        ),
    };
    println!("verdict: {headline}");
    println!("{timing}");
    let undecided: Vec<_> = report
        .keys
        .iter()
        .filter(|k| k.verdict == Verdict::Unknown)
        .collect();
    if report.verdict == Verdict::Unknown {
        for key in undecided.iter().take(5) {
            println!("  {}", key.reason.as_deref().unwrap_or("undecided"));
        }
    }
    if let Some(c) = &report.counterexample {
        print_counterexample(c);
    }
}

fn print_counterexample(c: &Counterexample) {
    const SHOWN: usize = 10;
    let key = c
        .key
        .as_deref()
        .map(|k| format!(" for key {k:?}"))
        .unwrap_or_default();
    println!("\ncounterexample{key}:");
    if let Some(blocked) = &c.blocked {
        println!("  cannot be linearized: {blocked}");
    }
    let skipped = c.partial.len().saturating_sub(SHOWN);
    println!(
        "  longest partial linearization: {} operations{}",
        c.partial.len(),
        if skipped > 0 {
            format!(", the last {SHOWN} shown")
        } else {
            String::new()
        }
    );
    for step in &c.partial[skipped..] {
        println!("    {:<60} state {}", step.op.to_string(), step.state);
    }
    println!(
        "  minimal sub-history: {} operations that cannot be linearized on their own{}:",
        c.minimal.len(),
        if c.minimal_is_one_minimal {
            ""
        } else {
            " (shrinking stopped at its time budget)"
        }
    );
    for op in &c.minimal {
        println!("    {op}");
    }
}
