"""The last stage of the data path: metrics (the paper's protocol), scoring restored images, tables and figures."""
