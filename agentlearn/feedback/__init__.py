"""What people tell the agent: labels, the labeling queue (assignment, claims), corrections, reviews, reports."""
