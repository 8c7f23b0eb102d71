# rules for the data stage (being written)
