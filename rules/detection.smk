# rules for the detection stage (being written)
