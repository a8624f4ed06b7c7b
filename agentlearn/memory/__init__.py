"""What the agent remembers between runs: the playbook of insights, its proposals, and attribution."""
