//! Per-stream state on the receive and send sides: statistics, NACK generation, the packet cache answering NACKs, keyframe requests.
