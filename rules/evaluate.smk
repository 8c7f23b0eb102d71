# rules for the evaluate stage (being written)
