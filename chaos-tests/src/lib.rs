//! Fault-injection suite (see tests/).
