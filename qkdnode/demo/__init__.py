"""`qkdnode demo`: a complete simulated link, every node and worker in its own process."""
