"""Tests of the cloud glue and audits against local servers speaking each cloud's wire format."""
