"""Headless notebook jobs and their result cache."""
