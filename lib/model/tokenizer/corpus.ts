/**
 * The training text of init-model vocabularies: original prose written for this repository
 * (public domain, CC0), English with some punctuation, digits and a few accented words, so the
 * learned merges cover common English pieces.
 */
export const INIT_CORPUS = `The river came down from the hills in the spring, and the people of the valley went out to
watch it. It was wide and brown and fast, and it carried branches, leaves and the last of the
winter snow. The children stood on the old stone bridge and counted the things that passed under
it: one log, two logs, a wooden bucket, a red boat with nobody in it. Their mother told them not to
lean over the rail, and they did not, because the water was loud and the wind was cold.

In the evening the baker opened the door of his shop and the smell of bread went out into the
street. He had been awake since four o'clock, as he was every day, and his hands were white with
flour. "There is no better time than the morning," he said to anyone who would listen. "The oven is
hot, the town is quiet, and the work is honest." The people who bought his bread agreed with him,
though few of them had ever seen the morning from his side of the counter.

A good machine is like a good recipe: it does the same thing every time. If you give it the same
numbers in the same order, it gives you the same answer, and if two machines disagree, one of them
is wrong. The engineers who built the counting house wrote down every step of every sum, so that
anyone could check the work with a pencil and a piece of paper. They were not clever; they were
careful, and being careful is what makes a result worth trusting.

On the first day of the fair there were twelve horses, forty-two sheep and more than three hundred
visitors. The café by the square sold coffee, tea and small cakes with lemon, and the musicians
played until the lamps were lit. Someone asked the old teacher what she remembered of the fairs of
her youth. She thought for a while and said: "The same songs, the same cakes, and the same rain.
Only the faces change, and even they are not so different." Then she laughed, finished her tea and
walked home along the river, where the water was quieter now and the evening light lay on it like
a sheet of gold.

Questions are how we learn. Why does the sun rise in the east? How far is it to the next town?
What is the name of that bird? Where do the swallows go in winter? When a child asks a question,
the best answer is often another question: what do you think? The world is large and patient, and
it will wait for us to notice it.
`;
