//! The recommender end to end: the planted-structure shop's evaluation, records and columns
//! agreeing, and the recommendation step sending carousels through the fake LINE server.

mod scenario;
mod shop;
