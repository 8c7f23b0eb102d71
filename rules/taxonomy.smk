# rules for the taxonomy stage (being written)
