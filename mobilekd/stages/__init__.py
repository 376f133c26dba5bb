"""mobilekd.stages"""
