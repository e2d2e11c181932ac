"""Notices to HR users when a hire is stuck: recorded by the pipelines, sent by a job."""
