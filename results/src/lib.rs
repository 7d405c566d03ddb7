//! The run directory (`store/<test>/<timestamp>/`) and what is rendered into it.
//!
//! This crate will write `results.json`, the latency and throughput plots with
//! fault intervals shaded, a self-contained `report.html` and `junit.xml`, from
//! a run's history and the checker's verdict.
