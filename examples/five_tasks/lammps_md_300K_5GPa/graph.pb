graph.pb stands in for a trained model; a forward common file shared by all tasks.
