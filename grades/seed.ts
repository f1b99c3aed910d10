import type { GradeType } from './protocol.ts';

export interface SeedStudent {
  id: number;
  firstName: string;
  lastName: string;
  grades: { title: string; type: GradeType; score: number }[];
}

/** The reference Go course's mock data set (grades/mockdata.go): loaded on the first start only. */
export const SEED_STUDENTS: readonly SeedStudent[] = [
  {
    id: 1,
    firstName: 'Averill',
    lastName: 'Simen',
    grades: [
      { title: 'Quiz 1', type: 'Quiz', score: 85 },
      { title: 'Week 1 Homework', type: 'Homework', score: 94 },
      { title: 'Quiz 2', type: 'Quiz', score: 88 },
    ],
  },
  {
    id: 2,
    firstName: 'Marge',
    lastName: 'Garrard',
    grades: [
      { title: 'Quiz 1', type: 'Quiz', score: 100 },
      { title: 'Week 1 Homework', type: 'Homework', score: 100 },
      { title: 'Quiz 2', type: 'Quiz', score: 88 },
    ],
  },
  {
    id: 3,
    firstName: 'Sydnie',
    lastName: 'Barber',
    grades: [
      { title: 'Quiz 1', type: 'Quiz', score: 77 },
      { title: 'Week 1 Homework', type: 'Homework', score: 0 },
      { title: 'Quiz 2', type: 'Quiz', score: 65 },
    ],
  },
  {
    id: 4,
    firstName: 'Louie',
    lastName: 'Easton',
    grades: [
      { title: 'Quiz 1', type: 'Quiz', score: 88 },
      { title: 'Week 1 Homework', type: 'Homework', score: 93 },
      { title: 'Quiz 2', type: 'Quiz', score: 84 },
    ],
  },
  {
    id: 5,
    firstName: 'Kylee',
    lastName: 'Attwood',
    grades: [
      { title: 'Quiz 1', type: 'Quiz', score: 95 },
      { title: 'Week 1 Homework', type: 'Homework', score: 100 },
      { title: 'Quiz 2', type: 'Quiz', score: 97 },
    ],
  },
];
