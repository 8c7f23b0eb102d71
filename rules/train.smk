# rules for the train stage (being written)
