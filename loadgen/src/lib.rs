//! Ringcast load generator (publishers and subscribers that speak WHIP/WHEP, ICE, DTLS and SRTP).
