"""mobilekd.bench"""
