# rules for the select stage (being written)
