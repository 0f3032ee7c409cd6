"""EC2: instances, templates, prices (boto3, blocking: callers run it in threads)."""
